package stack

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stampede-dev/stampede/platform/config"
	"github.com/stampede-dev/stampede/platform/web"
)

// Options shape the default stack.
type Options struct {
	Home          string // state directory (.stampede)
	BinDir        string // where stampede-temporal is (bin)
	Out           io.Writer
	Replication   int16    // Kafka topic replication factor
	KafkaHeap     string   // -Xmx of the broker
	KafkaJVMOpts  []string // the broker's JVM options beside the heap (GC, JIT)
	Orchestrators int      // members of the order-orchestrator group
	Workers       int      // saga workers
}

// DefaultKafkaJVMOpts are the broker's JVM options beside its heap. A fixed
// set of compiler threads lets up lower the C2 compiler's priority once
// (NiceJIT): dynamic ones would come and go.
const DefaultKafkaJVMOpts = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:-UseDynamicNumberOfCompilerThreads"

// New returns the whole platform in start order: infrastructure first, then
// the services that depend on it.
func New(o Options) *Stack {
	if o.Replication == 0 {
		o.Replication = 1
	}
	if o.KafkaHeap == "" {
		o.KafkaHeap = "1g"
	}
	if o.KafkaJVMOpts == nil {
		o.KafkaJVMOpts = strings.Fields(DefaultKafkaJVMOpts)
	}
	comps := []Component{
		withNice(Postgres(), niceIntake),
		Redis(),
		Prometheus(),
		withNice(Kafka(o.Replication, o.KafkaHeap, o.KafkaJVMOpts), niceIntake),
		withNice(Temporal(), niceIntake),
		Toxiproxy(),
		withNice(Service(config.Relay, config.Port(config.Relay), web.PathHealth, "relay"), niceIntake),
		withNice(Service(config.Inventory, config.Port(config.Inventory), web.PathReady, "inventory"), niceServices),
		withNice(Service(config.Payments, config.Port(config.Payments), web.PathReady, "payments"), niceServices),
		withNice(Service(config.Shipping, config.Port(config.Shipping), web.PathReady, "shipping"), niceServices),
		withNice(Service(config.Notifications, config.Port(config.Notifications), web.PathReady, "notifications"), niceBackground),
		withNice(Service(config.Analytics, config.Port(config.Analytics), web.PathReady, "analytics"), niceBackground),
	}
	// Several members of one kind: NAME-1, NAME-2, ... on consecutive ports.
	for i := 1; i <= o.Workers; i++ {
		port := config.Port(config.Worker) + i - 1
		comps = append(comps, withNice(Service(fmt.Sprintf("%s-%d", config.Worker, i), port, web.PathHealth,
			"worker", "--port", strconv.Itoa(port)), niceBackground))
	}
	for i := 1; i <= o.Orchestrators; i++ {
		port := config.Port(config.Orchestrator) + i - 1
		comps = append(comps, withNice(Service(fmt.Sprintf("%s-%d", config.Orchestrator, i), port, web.PathReady,
			"orchestrator", "--port", strconv.Itoa(port), "--instance", strconv.Itoa(i)), niceIntake))
	}
	comps = append(comps, withNice(Service(config.Orders, config.Port(config.Orders), web.PathReady, "orders"), niceIntake))
	return &Stack{Home: o.Home, BinDir: o.BinDir, Out: o.Out, Components: comps}
}

// CPU priorities on one shared machine. Order intake (Orders, relay, Kafka,
// Temporal, the orchestrators, and PostgreSQL, which Orders writes each order
// and its outbox row to and the relay claims them from) runs above normal
// priority (when the user may raise it: root or CAP_SYS_NICE; otherwise
// nice(1) warns and runs it at normal priority); the saga's progress
// (workers), notifications and analytics run at the lowest, the services the
// saga calls in between, Redis and Prometheus at normal. PostgreSQL at normal
// priority under intake processes above it stalled every client of it at once
// for 1.7 s in one short chaos run at a 20/s peak (host load 3.7): Orders'
// intake and its projection stopped while the orchestrators, which do not use
// it, ran on. After an outage every waiting saga resumes
// at once; with every process equal that burst starved the orchestrators'
// workflow starts for seconds (consumer lag max 3.1 s in a short chaos run at
// a 10/s peak; 0.47 s with the background niced; 74 ms at a 5/s peak with the
// intake raised too). PostgreSQL's backend for each connection then takes its
// client's niceness when that is lower (platform/postgres/nice.go), so the
// saga's database work waits behind the intake as the saga does.
// STAMPEDE_NO_NICE=1 turns it all off.
const (
	niceIntake     = -5
	niceServices   = 10
	niceBackground = 19
)

func withNice(c Component, nice int) Component {
	c.Nice = nice
	return c
}
