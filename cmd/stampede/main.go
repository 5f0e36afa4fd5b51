// Command stampede runs the Stampede platform and its harness: it starts and
// stops the stack, serves each platform process, and drives demos, load and
// chaos runs. Run `stampede help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"text/tabwriter"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands is the table of contents of the CLI.
var commands = map[string]command{
	"up":     {"start the stack on 127.0.0.1 (installs what is missing)", runUp},
	"down":   {"stop what up started (keeps data unless --wipe)", runDown},
	"status": {"show each component: running, pid, port, ready", runStatus},
	"logs":   {"print or follow a component's log", runLogs},
	"serve":  {"run one platform process (orders, relay, toxiproxy, ...)", runServe},
	"demo":   {"start the stack, place sample orders and show where to look", runDemo},
	"bench":  {"measure the running stack (accept latency, commit -> visible, ...)", runBench},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "stampede:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder is an error that chooses the exit code (e.g. a failed chaos gate).
type exitCoder interface{ ExitCode() int }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, []string{"--help"})
			}
		}
		usage(stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(os.Stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprint(w, `stampede: the Stampede order platform and its load and chaos harness.

Usage: stampede COMMAND [flags]     (stampede COMMAND --help for its flags)

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Every port is configurable with STAMPEDE_<NAME>_PORT (e.g. STAMPEDE_KAFKA_PORT).
Point at existing infrastructure with STAMPEDE_KAFKA_BROKERS, STAMPEDE_TEMPORAL_ADDRESS,
STAMPEDE_POSTGRES_URL and STAMPEDE_REDIS_URL: up then checks them instead of starting them.
`)
}
