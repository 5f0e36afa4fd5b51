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
	"syscall"
	"text/tabwriter"
)

// command is one subcommand, or one process of `stampede serve`.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands is the table of contents of the CLI, in the order help lists it.
var commands = []command{
	{"bench", "measure the running stack (accept latency, commit -> visible, ...)", runBench},
	{"chaos", "kill Payments (and more) under 5x load and prove no order is lost, doubled or half-done", runChaos},
	{"dashboards", "check every dashboard panel against the live Prometheus", runDashboards},
	{"deadletter", "list dead letters (outbox rows, orders.dlq and analytics.dlq records), replay them", runDeadletter},
	{"demo", "start the stack, place sample orders and show where to look", runDemo},
	{"down", "stop what up started (keeps data unless --wipe)", runDown},
	{"images", "build the platform's container images locally (Podman or Docker, no registry); list them", runImages},
	{"kill", "send a signal (default SIGKILL) to one running component, as a fault", runKill},
	{"logs", "print or follow a component's log", runLogs},
	{"noise", "burn CPU on purpose for a while (the busy neighbour of chaos --noise)", runNoise},
	{"notifications", "list dead notifications, requeue one", runNotifications},
	{"probe", "send hostile input to a running stack (each case must get a 4xx), then prove a normal order completes", runProbe},
	{"restart", "stop and start components (a killed one is just started)", runRestart},
	{"serve", "run one platform process (orders, relay, toxiproxy, ...)", runServe},
	{"status", "show each component: running, pid, port, ready", runStatus},
	{"token", "issue a user token for the Orders API (stampede token user ID)", runToken},
	{"up", "start the stack on 127.0.0.1 (installs what is missing)", runUp},
}

// servers are the platform processes `stampede serve NAME` runs, in the
// order `stampede serve --help` lists them; harness/stack starts each.
var servers = []command{
	{"analytics", "analytics router on 127.0.0.1:8085: EventBridge-style rules route events to topics, webhooks, files, EventBridge", serveAnalytics},
	{"inventory", "Inventory on 127.0.0.1:8081 (stock per SKU, reservations held per order)", serveInventory},
	{"notifications", "Notifications on 127.0.0.1:8084: asynq worker sending email, push and SMS (sandbox providers)", serveNotifications},
	{"orchestrator", "orchestrator member: starts an order's saga workflow for each order.created, signals deliveries", serveOrchestrator},
	{"orders", "Orders API on 127.0.0.1:8080 (accepts orders, projects saga status)", serveOrders},
	{"payments", "Payments on 127.0.0.1:8082 (idempotent charges and full refunds)", servePayments},
	{"relay", "outbox relay: publishes every service's committed outbox rows to Kafka", serveRelay},
	{"shipping", "Shipping on 127.0.0.1:8083 (one shipment per order; cancel, deliver)", serveShipping},
	{"toxiproxy", "toxiproxy API on 127.0.0.1:8474 with the payments proxy on 18082", serveToxiproxy},
	{"worker", "saga worker: runs the order workflows (task queue order-processing) on Temporal", serveWorker},
}

// lookup finds the entry called name in a table.
func lookup(table []command, name string) (command, bool) {
	for _, c := range table {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// names lists a table's names, in its order.
func names(table []command) []string {
	out := make([]string, len(table))
	for i, c := range table {
		out[i] = c.name
	}
	return out
}

// printTable writes one "  name  summary" line per entry, aligned.
func printTable(w io.Writer, table []command) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range table {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
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

// usageError is a command used wrongly (a bad argument or flag value): exit
// status 2, as flag parsing uses.
type usageError struct{ error }

func (usageError) ExitCode() int   { return 2 }
func (e usageError) Unwrap() error { return e.error }

// run runs the command args name (help when none) with the rest of args; it
// never exits, so main alone turns the error into an exit code.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := lookup(commands, args[1]); ok {
				return c.run(ctx, []string{"--help"})
			}
		}
		usage(stdout)
		return nil
	}
	c, ok := lookup(commands, args[0])
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
	printTable(w, commands)
	fmt.Fprint(w, `
Every port is configurable with STAMPEDE_<NAME>_PORT (e.g. STAMPEDE_KAFKA_PORT).
Point at existing infrastructure with STAMPEDE_KAFKA_BROKERS, STAMPEDE_TEMPORAL_ADDRESS,
STAMPEDE_POSTGRES_URL and STAMPEDE_REDIS_URL: up then checks them instead of starting them.
`)
}
