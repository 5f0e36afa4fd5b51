package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/stampede-dev/stampede/harness/bench"
	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/saga"
	"github.com/stampede-dev/stampede/platform/temporalclient"
)

// costRun is one run of `stampede bench cost`.
type costRun struct {
	At          time.Time     `json:"at"`
	Rate        int           `json:"rate"`
	Duration    time.Duration `json:"durationNs"`
	Idle        time.Duration `json:"idleNs"`
	Warmup      time.Duration `json:"warmupNs"`
	Window      time.Duration `json:"windowNs"` // load + settle
	Persistence string        `json:"persistence"`
	// HostSpeed is what a CPU-second bought on this host just before the
	// idle window: costs of two runs compare only at like speeds.
	HostSpeed bench.HostSpeed  `json:"hostSpeed"`
	Saga      bench.SagaResult `json:"saga"`
	Rows      []bench.CostRow  `json:"rows"`
	Total     bench.CostRow    `json:"total"`
	// LoadGen is the benchmark's own HTTP client (this process), apart from
	// the stack's figures.
	LoadGen bench.CostRow `json:"loadGen"`
	// MachineBusy is every CPU's busy time over the window (from /proc/stat),
	// so what the listed processes leave out shows.
	MachineBusy time.Duration `json:"machineBusyNs"`
	// HistoryEvents is the Temporal history length of the completed sagas
	// (read when they were in_transit, waiting for delivery).
	HistoryEvents stats.Dist `json:"-"`
	HistoryMean   float64    `json:"historyEventsMean"`
	HistorySample int        `json:"historySample"`
	// Records and Markers per completed order, by topic: data records and
	// transaction control markers (one per partition a transaction touched).
	Records map[string]float64 `json:"recordsPerOrder"`
	Markers map[string]float64 `json:"markersPerOrder"`
	// Transactions is the Kafka transactions committed or aborted per
	// completed order (control markers of one producer with one timestamp
	// are one transaction's).
	Transactions float64 `json:"transactionsPerOrder"`
}

func benchCost(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede bench cost", `What one order costs the whole stack. Reads the CPU time of every process the stack
started (.stampede/run/*.pid, with its children: PostgreSQL's backends included) from
/proc, first with no load for --idle, then while placing orders that all complete (the
same orders as bench saga) at --rate for --duration and until every saga is in_transit.
Reports, per component, idle cores and the CPU per completed saga net of its idle use;
the benchmark's own client apart; the Temporal history events per saga; and the Kafka
data records and transaction markers per order, by topic. Appends to OUT/cost.md and
OUT/cost.jsonl. Run it with nothing else busy on the machine.`)
	var (
		rate             int
		duration, idle   time.Duration
		warmup           time.Duration
		settle           time.Duration
		out, url, home   string
		temporalAddr, ns string
		sample           int
	)
	fs.IntVar(&rate, "rate", "", 10, "orders per second")
	fs.DurationVar(&duration, "duration", "", time.Minute, "how long to place orders")
	fs.DurationVar(&idle, "idle", "", 20*time.Second, "how long to measure the idle stack first")
	fs.DurationVar(&warmup, "warmup", "", 30*time.Second, "orders at --rate before measuring, not counted (a fresh Kafka JVM compiles its hot code for about a minute); 0 for none")
	fs.DurationVar(&settle, "settle", "", 60*time.Second, "longest wait after the last order for every saga to settle")
	fs.StringVar(&out, "out", "", "results/bench", "directory for cost.md and cost.jsonl")
	ordersURLFlag(fs, &url)
	fs.StringVar(&home, "home", "STAMPEDE_HOME", ".stampede", "stack state directory (its run/*.pid name the processes)")
	fs.StringVar(&temporalAddr, "temporal", "STAMPEDE_TEMPORAL_ADDRESS", config.TemporalAddress(), "Temporal frontend address (history lengths)")
	namespaceFlag(fs, &ns)
	fs.IntVar(&sample, "history-sample", "", 200, "completed sagas whose Temporal history length is read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case rate < 1 || rate > 2000:
		return fmt.Errorf("--rate %d: want 1..2000", rate)
	case duration < time.Second:
		return fmt.Errorf("--duration %s: want at least 1s", duration)
	case idle < 5*time.Second:
		return fmt.Errorf("--idle %s: want at least 5s (the idle rate is subtracted)", idle)
	case warmup < 0:
		return fmt.Errorf("--warmup %s: must not be negative", warmup)
	case settle < 0:
		return fmt.Errorf("--settle %s: must not be negative", settle)
	case sample < 0:
		return fmt.Errorf("--history-sample %d: must not be negative", sample)
	}
	pids, err := stackPids(filepath.Join(home, "run"))
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("no pid files in %s: start the stack first (make up)", filepath.Join(home, "run"))
	}
	run := costRun{At: time.Now().UTC(), Rate: rate, Duration: duration, Idle: idle, Warmup: warmup,
		Persistence: temporalPersistence(pids["temporal"])}
	self := os.Getpid()

	if warmup > 0 {
		fmt.Printf("bench cost: warm-up, %d orders/s for %s (not counted)\n", rate, warmup)
		if _, err := bench.Saga(ctx, bench.SagaOptions{OrdersURL: url, Rate: rate, Duration: warmup, Settle: settle, RunID: fmt.Sprintf("bench-cost-warmup-%d", time.Now().UnixNano())}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	run.HostSpeed = bench.MeasureHostSpeed(5, 200*time.Millisecond)
	fmt.Printf("bench cost: host speed %s\n", run.HostSpeed)
	fmt.Printf("bench cost: idle stack for %s (%d processes)\n", idle, len(pids))
	t0, err := bench.ReadProcs("/proc")
	if err != nil {
		return err
	}
	busy0 := bench.ReadHostCPU().Gross()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(idle):
	}
	t1, _ := bench.ReadProcs("/proc")
	busy1 := bench.ReadHostCPU().Gross()
	ends0, err := topicEnds(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("bench cost: %d orders/s for %s against %s\n", rate, duration, url)
	res, err := bench.Saga(ctx, bench.SagaOptions{OrdersURL: url, Rate: rate, Duration: duration, Settle: settle, Progress: os.Stdout})
	if err != nil {
		return err
	}
	t2, _ := bench.ReadProcs("/proc")
	busy2 := bench.ReadHostCPU().Gross()
	run.Saga = res
	run.Window = t2.At.Sub(t1.At)
	if res.Completed == 0 {
		return fmt.Errorf("no saga completed (%d placed, %d failed, %d not settled): nothing to divide by", res.Placed, res.Failed, res.NotSettled)
	}

	var samples []bench.CostSample
	for name, pid := range pids {
		samples = append(samples, bench.Sample(name, pid, t0, t1, t2))
	}
	idleWin, loadWin := t1.At.Sub(t0.At), t2.At.Sub(t1.At)
	run.Rows, run.Total = bench.CostRows(samples, idleWin, loadWin, res.Completed)
	lg, _ := bench.CostRows([]bench.CostSample{bench.Sample("load generator (this process)", self, t0, t1, t2)}, idleWin, loadWin, res.Completed)
	run.LoadGen = lg[0]
	if busy0 >= 0 && busy1 >= busy0 && busy2 >= busy1 {
		run.MachineBusy = busy2 - busy1
	}

	ends1, err := topicEnds(ctx)
	if err != nil {
		return err
	}
	if run.Records, run.Markers, run.Transactions, err = countRecords(ctx, ends0, ends1, res.Completed); err != nil {
		fmt.Fprintf(os.Stderr, "kafka records: %v\n", err)
	}
	if sample > 0 {
		lens, err := historyLengths(ctx, temporalAddr, ns, res.IDs, sample)
		if err != nil {
			fmt.Fprintf(os.Stderr, "temporal history lengths: %v\n", err)
		}
		run.HistorySample = len(lens)
		var sum float64
		for _, n := range lens {
			sum += float64(n)
		}
		if len(lens) > 0 {
			run.HistoryMean = sum / float64(len(lens))
		}
	}
	md := costTable(run)
	fmt.Print(md)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(out, "cost.md"), md); err != nil {
		return err
	}
	b, _ := json.Marshal(run)
	return appendFile(filepath.Join(out, "cost.jsonl"), string(b)+"\n")
}

// stackPids reads NAME.pid files: component name -> pid (live ones only).
func stackPids(dir string) (map[string]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w (start the stack first: make up)", dir, err)
	}
	out := map[string]int{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok {
			continue
		}
		if pid := readPid(filepath.Join(dir, e.Name())); pid > 0 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				out[name] = pid
			}
		}
	}
	return out, nil
}

// topicEnds lists every non-internal topic's end offsets.
func topicEnds(ctx context.Context) (map[string]map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(config.KafkaBrokers()...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(tctx)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka end offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if strings.HasPrefix(o.Topic, "__") {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

// countRecords reads every topic between two sets of end offsets
// (read_uncommitted, so aborted records count too) and returns data records
// and control markers (offsets with no record) per order, by topic.
func countRecords(ctx context.Context, from, to map[string]map[int32]int64, orders int) (records, markers map[string]float64, txns float64, err error) {
	want := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{}
	for topic, ps := range to {
		for p, end := range ps {
			start := from[topic][p]
			if end <= start {
				continue
			}
			if want[topic] == nil {
				want[topic], left[topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			want[topic][p] = kgo.NewOffset().At(start)
			left[topic][p] = end
		}
	}
	records, markers = map[string]float64{}, map[string]float64{}
	if len(want) == 0 {
		return records, markers, 0, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(config.KafkaBrokers()...), kgo.ConsumePartitions(want),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, nil, 0, err
	}
	defer cl.Close()
	type txn struct {
		producer int64
		epoch    int16
		at       int64
	}
	data, control := map[string]int64{}, map[string]int64{}
	seen := map[txn]bool{}
	pending := 0
	for _, ps := range left {
		pending += len(ps)
	}
	// The range is fixed and already written: every offset in it is a data
	// record or a control marker, so a partition is done at its last offset.
	deadline := time.Now().Add(60 * time.Second)
	for pending > 0 && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, nil, 0, ctx.Err()
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Topic][r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			n++
			if r.Attrs.IsControl() {
				control[r.Topic]++
				seen[txn{r.ProducerID, r.ProducerEpoch, r.Timestamp.UnixMilli()}] = true
			} else {
				data[r.Topic]++
			}
			if r.Offset >= end-1 {
				delete(left[r.Topic], r.Partition)
				pending--
			}
		})
		if n == 0 {
			break
		}
	}
	for topic := range want {
		records[topic] = float64(data[topic]) / float64(orders)
		markers[topic] = float64(control[topic]) / float64(orders)
	}
	txns = float64(len(seen)) / float64(orders)
	if pending > 0 {
		return records, markers, txns, fmt.Errorf("%d partitions not read to their end: counts are low", pending)
	}
	return records, markers, txns, nil
}

// historyLengths reads the Temporal history length of up to n sagas.
func historyLengths(ctx context.Context, addr, ns string, ids []string, n int) ([]int64, error) {
	opts, err := temporalclient.Options(client.Options{HostPort: addr, Namespace: ns, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if len(ids) > n {
		ids = ids[:n]
	}
	var (
		mu   sync.Mutex
		lens []int64
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
		last error
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			d, err := c.DescribeWorkflowExecution(dctx, saga.WorkflowID(id), "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				last = err
				return
			}
			lens = append(lens, d.GetWorkflowExecutionInfo().GetHistoryLength())
		}()
	}
	wg.Wait()
	return lens, last
}

func costTable(r costRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s: %d orders/s for %s, Temporal %s\n\n", r.At.Format("2006-01-02 15:04 UTC"), r.Rate, r.Duration, r.Persistence)
	fmt.Fprintf(&b, "Command: `stampede bench cost --rate %d --duration %s --idle %s --warmup %s`. %d placed, %d completed, %d failed, %d not settled; load window %s (placing + settling); idle measured for %s first and subtracted. Host speed before the idle window: %s (`bench.MeasureHostSpeed`: what one CPU-second buys here now).\n\n",
		r.Rate, r.Duration, r.Idle, r.Warmup, r.Saga.Placed, r.Saga.Completed, r.Saga.Failed, r.Saga.NotSettled, r.Window.Round(time.Second), r.Idle, r.HostSpeed)
	b.WriteString("| component | idle cores | CPU in window | net CPU per completed saga |\n|---|---|---|---|\n")
	row := func(c bench.CostRow) {
		if c.Gone {
			fmt.Fprintf(&b, "| %s | (restarted or stopped during the run: left out) | | |\n", c.Name)
			return
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.1f s | %.1f ms |\n", c.Name, c.IdleCores, c.LoadCPU.Seconds(), ms1(c.PerSaga))
	}
	for _, c := range r.Rows {
		row(c)
	}
	fmt.Fprintf(&b, "| **stack total** | **%.3f** | **%.1f s** | **%.1f ms** |\n", r.Total.IdleCores, r.Total.LoadCPU.Seconds(), ms1(r.Total.PerSaga))
	row(r.LoadGen)
	if r.MachineBusy > 0 {
		fmt.Fprintf(&b, "| whole machine (/proc/stat, gross) | | %.1f s (%.2f cores) | |\n", r.MachineBusy.Seconds(), r.MachineBusy.Seconds()/r.Window.Seconds())
	}
	fmt.Fprintf(&b, "\nTemporal history events per saga at in_transit: mean %.1f (%d sagas read).\n", r.HistoryMean, r.HistorySample)
	topics := make([]string, 0, len(r.Records))
	for t := range r.Records {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	if len(topics) > 0 {
		b.WriteString("\n| Kafka topic | records per order | transaction markers per order |\n|---|---|---|\n")
		var tr, tm float64
		for _, t := range topics {
			fmt.Fprintf(&b, "| %s | %.2f | %.2f |\n", t, r.Records[t], r.Markers[t])
			tr += r.Records[t]
			tm += r.Markers[t]
		}
		fmt.Fprintf(&b, "| all | %.2f | %.2f |\n", tr, tm)
		fmt.Fprintf(&b, "\nKafka transactions per order: %.2f.\n", r.Transactions)
	}
	return b.String()
}

func ms1(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
