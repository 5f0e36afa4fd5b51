package stack

import (
	"io"

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
		Service(config.Inventory, config.Port(config.Inventory), "/readyz", "inventory"),
		Service(config.Payments, config.Port(config.Payments), "/readyz", "payments"),
		Service(config.Shipping, config.Port(config.Shipping), "/readyz", "shipping"),
	}
	comps = append(comps, Service(config.Orders, config.Port(config.Orders), "/readyz", "orders"))
	return &Stack{Home: o.Home, BinDir: o.BinDir, Out: o.Out, Components: comps}
}
