package stack

import (
	"fmt"
	"io"
	"strconv"

	"github.com/stampede-dev/stampede/platform/config"
)

// Options shape the default stack.
type Options struct {
	Home          string // state directory (.stampede)
	BinDir        string // where stampede-temporal is (bin)
	Out           io.Writer
	Replication   int16  // Kafka topic replication factor
	KafkaHeap     string // -Xmx of the broker
	Orchestrators int    // members of the order-orchestrator group
	Workers       int    // saga workers
}

// New returns the whole platform in start order: infrastructure first, then
// the services that depend on it.
func New(o Options) *Stack {
	if o.Replication == 0 {
		o.Replication = 1
	}
	if o.KafkaHeap == "" {
		o.KafkaHeap = "1g"
	}
	comps := []Component{
		Postgres(),
		Redis(),
		Prometheus(),
		Kafka(o.Replication, o.KafkaHeap),
		Temporal(),
		Toxiproxy(),
		Service(config.Relay, config.Port(config.Relay), "/healthz", "relay"),
		background(Service(config.Inventory, config.Port(config.Inventory), "/readyz", "inventory"), niceServices),
		background(Service(config.Payments, config.Port(config.Payments), "/readyz", "payments"), niceServices),
		background(Service(config.Shipping, config.Port(config.Shipping), "/readyz", "shipping"), niceServices),
		background(Service(config.Notifications, config.Port(config.Notifications), "/readyz", "notifications"), niceBackground),
		background(Service(config.Analytics, config.Port(config.Analytics), "/readyz", "analytics"), niceBackground),
	}
	// Several members of one kind: NAME-1, NAME-2, ... on consecutive ports.
	for i := 1; i <= o.Workers; i++ {
		port := config.Port(config.Worker) + i - 1
		comps = append(comps, background(Service(fmt.Sprintf("%s-%d", config.Worker, i), port, "/healthz",
			"worker", "--port", strconv.Itoa(port)), niceBackground))
	}
	for i := 1; i <= o.Orchestrators; i++ {
		port := config.Port(config.Orchestrator) + i - 1
		comps = append(comps, Service(fmt.Sprintf("%s-%d", config.Orchestrator, i), port, "/readyz",
			"orchestrator", "--port", strconv.Itoa(port), "--instance", strconv.Itoa(i)))
	}
	comps = append(comps, Service(config.Orders, config.Port(config.Orders), "/readyz", "orders"))
	return &Stack{Home: o.Home, BinDir: o.BinDir, Out: o.Out, Components: comps}
}

// CPU priorities on one shared machine. Order intake (Orders, relay, Kafka,
// Temporal, the orchestrators) runs at normal priority; the saga's progress
// (workers), notifications and analytics run at the lowest, and the services
// the saga calls in between. After an outage every waiting saga resumes at
// once; at normal priority that burst starved the orchestrators' workflow
// starts for seconds (consumer lag 3 s in a short chaos run, 0.5 s with these).
// STAMPEDE_NO_NICE=1 turns it off.
const (
	niceServices   = 10
	niceBackground = 19
)

func background(c Component, nice int) Component {
	c.Nice = nice
	return c
}
