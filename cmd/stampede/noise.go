package main

import (
	"context"
	"fmt"
	"time"

	"github.com/stampede-dev/stampede/harness/chaos"
	"github.com/stampede-dev/stampede/platform/config"
)

func runNoise(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede noise", `Keep --cores cores busy at normal priority for --for, then exit (also on Ctrl-C).
`+"`stampede chaos --noise N`"+` runs it beside the load, to show whether the verdict holds on a
busy CI host.`)
	var (
		cores float64
		limit time.Duration
	)
	fs.Float64Var(&cores, "cores", "", 1, "cores to keep busy (a fraction spins that share of each 10 ms)")
	fs.DurationVar(&limit, "for", "", time.Minute, "how long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cores <= 0 || cores > 64 {
		return fmt.Errorf("--cores %g: want more than 0 and at most 64", cores)
	}
	if limit <= 0 || limit > 2*time.Hour {
		return fmt.Errorf("--for %s: want more than 0 and at most 2h", limit)
	}
	chaos.Burn(ctx, cores, limit)
	return nil
}
