package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/stampede-dev/stampede/harness/bench"
	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/platform/config"
)

func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Print(`Usage: stampede bench NAME [flags]

Measures the running stack and writes the figures to results/bench/NAME.{md,json}.

Benchmarks:
  orders          POST /v1/orders at a constant rate: accept latency, and commit ->
                  visible on the orders topic for a read_committed consumer
  saga            orders through the whole saga at one rate or a sweep of rates:
                  confirmation and end-to-end latency, the highest rate that keeps up
  notifications   enqueue -> first channel delivered on the Notifications service
  cost            CPU per completed saga of every process of the stack (idle subtracted),
                  Temporal history events per saga, Kafka records and transactions per order

` + "`stampede bench NAME --help`" + ` lists each benchmark's flags.
`)
		if len(args) == 0 {
			return fmt.Errorf("bench needs a benchmark name")
		}
		return nil
	}
	switch args[0] {
	case "orders":
		return benchOrders(ctx, args[1:])
	case "saga":
		return benchSaga(ctx, args[1:])
	case "notifications":
		return benchNotifications(ctx, args[1:])
	case "cost":
		return benchCost(ctx, args[1:])
	}
	return fmt.Errorf("unknown benchmark %q (known: orders, saga, notifications, cost)", args[0])
}

func benchOrders(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede bench orders", `POST /v1/orders at a constant (open-loop) rate against the running stack and watch the
orders topic with a read_committed consumer. Reports accept latency and commit -> visible,
bounded below by "visible after the 202" and above by "visible after the request".`)
	var (
		rate     int
		duration time.Duration
		out      string
		url      string
	)
	fs.IntVar(&rate, "rate", "", 50, "requests per second")
	fs.DurationVar(&duration, "duration", "", 60*time.Second, "how long to send")
	fs.StringVar(&out, "out", "", "results/bench", "directory for orders.md and orders.json")
	ordersURLFlag(fs, &url)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if rate < 1 || rate > 5000 {
		return fmt.Errorf("--rate %d: want 1..5000", rate)
	}
	if duration < time.Second {
		return fmt.Errorf("--duration %s: want at least 1s", duration)
	}
	fmt.Printf("bench orders: %d req/s for %s against %s\n", rate, duration, url)
	res, err := bench.Accept(ctx, bench.AcceptOptions{OrdersURL: url, Brokers: config.KafkaBrokers(), Rate: rate, Duration: duration, Progress: os.Stdout})
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	md := fmt.Sprintf(`# Orders accept benchmark

Command: `+"`stampede bench orders --rate %d --duration %s`"+` (run %s on %s, %d CPUs)

| figure | n | p50 | p90 | p99 | max |
|---|---|---|---|---|---|
| POST /v1/orders accept latency | %s |
| commit -> visible, lower bound (after the 202) | %s |
| commit -> visible, upper bound (after the request) | %s |

Sent %d, accepted %d, failed %d, accepted but not visible within 5 s: %d.
`, rate, duration, time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(),
		row(res.Accept), row(res.VisibleAfterResponse), row(res.VisibleAfterRequest),
		res.Sent, res.Accepted, res.Failed, res.NotVisible)
	if err := writeResults(out, "orders", md, res); err != nil {
		return err
	}
	fmt.Print(md)
	if res.Failed > 0 || res.NotVisible > 0 {
		return fmt.Errorf("%d requests failed and %d accepted orders never became visible", res.Failed, res.NotVisible)
	}
	return nil
}

// writeResults writes a benchmark's figures to DIR/NAME.md and, as indented
// JSON, DIR/NAME.json.
func writeResults(dir, name, md string, res any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	return os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644)
}

func row(d stats.Dist) string {
	f := func(x time.Duration) string { return fmt.Sprintf("%.1f ms", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("%d | %s | %s | %s | %s", d.N, f(d.P50), f(d.P90), f(d.P99), f(d.Max))
}
