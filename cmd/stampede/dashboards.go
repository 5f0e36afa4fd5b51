package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/stampede-dev/stampede/harness/dashcheck"
	"github.com/stampede-dev/stampede/platform/config"
)

// dashboardsFailed is the exit of a check that found failing panels.
type dashboardsFailed struct{ n int }

func (e dashboardsFailed) Error() string {
	return fmt.Sprintf("dashboards check: %d queries failed", e.n)
}
func (dashboardsFailed) ExitCode() int { return 1 }

func runDashboards(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Print(`Usage: stampede dashboards check|cost [flags]

check  Lints every Grafana dashboard in --dir, then evaluates every query of
       every panel (rows' panels, variables and annotation queries included,
       template variables substituted) against the live Prometheus, and fails
       naming the dashboard, the panel and the expression of every query that
       errors or returns no series in the last --window. Run it right after a
       load or chaos run.
cost   Reports what scraping costs over the last --window: Prometheus's CPU,
       memory, head series and ingestion rate, and the series of every process.
`)
		if len(args) == 0 {
			return errors.New("dashboards needs a subcommand: check")
		}
		return nil
	}
	switch args[0] {
	case "check":
	case "cost":
		return dashboardsCost(ctx, args[1:])
	default:
		return fmt.Errorf("unknown dashboards subcommand %q (known: check, cost)", args[0])
	}
	fs := config.NewFlagSet("stampede dashboards check", `Lint every dashboard, then evaluate every panel query against Prometheus
over the last --window; exit 1 naming each failing dashboard / panel / expression.`)
	var (
		prom, dir, allow, rateIvl string
		window                    time.Duration
		verbose                   bool
	)
	prometheusFlag(fs, &prom)
	fs.StringVar(&dir, "dir", "STAMPEDE_DASHBOARDS_DIR", "dashboards", "directory of the Grafana dashboard JSON files")
	fs.StringVar(&allow, "allow-empty", "STAMPEDE_DASHBOARDS_ALLOW_EMPTY", "", "regexp of \"dashboard / panel\" or expressions that may return no series (they must still evaluate)")
	fs.StringVar(&rateIvl, "rate-interval", "", "1m", "value of $__rate_interval")
	fs.DurationVar(&window, "window", "STAMPEDE_DASHBOARDS_WINDOW", 15*time.Minute, "how far back a query may find its data")
	fs.BoolVar(&verbose, "v", "", false, "list every query, not only the failing ones")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if window < time.Minute {
		return fmt.Errorf("--window %s: want at least 1m", window)
	}
	c := &dashcheck.Checker{URL: prom, Window: window}
	if allow != "" {
		re, err := regexp.Compile(allow)
		if err != nil {
			return fmt.Errorf("--allow-empty: %w", err)
		}
		c.AllowEmpty = re
	}
	ds, err := dashcheck.LoadDir(dir)
	if err != nil {
		return err
	}
	var lint int
	for _, d := range ds {
		for _, p := range dashcheck.Lint(d) {
			fmt.Fprintln(os.Stdout, "LINT", p)
			lint++
		}
	}
	results, err := c.Check(ctx, ds, dashcheck.Options{RateInterval: rateIvl})
	if err != nil {
		return err
	}
	failed := dashcheck.Report(os.Stdout, results, verbose)
	if failed+lint > 0 {
		return dashboardsFailed{failed + lint}
	}
	return nil
}

func dashboardsCost(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede dashboards cost", `Report Prometheus's CPU, memory, head series and ingestion over the last --window,
and the series every scraped process exposes (run it right after make chaos).`)
	var (
		prom   string
		window time.Duration
	)
	prometheusFlag(fs, &prom)
	fs.DurationVar(&window, "window", "STAMPEDE_DASHBOARDS_WINDOW", 15*time.Minute, "the window to measure (the run just finished)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if window < time.Minute {
		return fmt.Errorf("--window %s: want at least 1m", window)
	}
	c := &dashcheck.Checker{URL: prom}
	cost, err := c.Cost(ctx, window)
	if err != nil {
		return err
	}
	cost.WriteMarkdown(os.Stdout)
	return nil
}
