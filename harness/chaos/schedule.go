// Package chaos runs a chaos experiment against the running Stampede stack,
// shaped like a Chaos Toolkit experiment: a steady-state hypothesis checked
// before and after, a method (k6 load plus a seeded fault schedule), and
// rollbacks that always run (every proxy healed, every killed process
// restarted), also on Ctrl-C and on a failing run.
//
// It must never touch a component it did not break itself, and never leave
// a toxic or a killed process behind.
package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// Kind is how a fault is injected.
type Kind string

// Fault kinds.
const (
	KindDisable    Kind = "disable"     // toxiproxy proxy disabled: connection refused
	KindTimeout    Kind = "timeout"     // toxiproxy timeout toxic, timeout 0: connections hang
	KindLatency    Kind = "latency"     // toxiproxy latency toxic with jitter
	KindResetPeer  Kind = "reset_peer"  // toxiproxy reset_peer toxic: connections reset (RST)
	KindKill       Kind = "kill"        // SIGKILL a component; restarted after the fault's duration
	KindRestart    Kind = "restart"     // stop a component (SIGTERM), start it after the fault's duration
	KindOutage     Kind = "outage"      // proxy disabled longer than the worker's outage budget
	KindDuplicate  Kind = "duplicate"   // re-produce recorded order.created records
	KindPoison     Kind = "poison"      // produce an undecodable record into orders
	KindRelayCrash Kind = "relay_crash" // restart the relay armed to die between DB commit and publish
)

// Unreachable reports whether a fault of kind leaves its target unreachable
// while it lasts (refused, hung, reset, not running), as opposed to slow
// (latency) or fed bad records.
func Unreachable(k Kind) bool {
	switch k {
	case KindDisable, KindOutage, KindTimeout, KindResetPeer, KindKill, KindRestart, KindRelayCrash:
		return true
	}
	return false
}

// Spec is one entry of a profile: what to break, for how long.
type Spec struct {
	Name     string        `json:"name"`
	Kind     Kind          `json:"kind"`
	Target   string        `json:"target"` // proxy or component name
	Duration time.Duration `json:"durationNs"`
	// Consumer marks faults that stop or rebalance the order-orchestrator
	// group: their windows are excluded from the lag gate and reported apart.
	Consumer bool   `json:"consumer"`
	Note     string `json:"note"`
	// Latency and Jitter parameterise KindLatency.
	Latency time.Duration `json:"latencyNs,omitempty"`
	Jitter  time.Duration `json:"jitterNs,omitempty"`
}

// Planned is a fault placed in time, offsets from the start of the load.
type Planned struct {
	Spec
	At time.Duration `json:"atNs"`
}

// End is when the fault is healed, as an offset from the start of the load.
func (p Planned) End() time.Duration { return p.At + p.Duration }

// Profiles.
const (
	ProfileShort = "short"
	ProfileFull  = "full"
)

// OutageBudget is the worker's outage budget the full profile sets for the
// run (STAMPEDE_OUTAGE_BUDGET): the outage fault lasts longer than it.
const OutageBudget = 10 * time.Second

// ShortFaults are the CI profile: Payments broken five ways during the 5x peak.
func ShortFaults() []Spec {
	return []Spec{
		{Name: "payments-refused", Kind: KindDisable, Target: "payments", Duration: 15 * time.Second,
			Note: "payments proxy disabled: every connection refused"},
		{Name: "payments-hang", Kind: KindTimeout, Target: "payments", Duration: 10 * time.Second,
			Note: "timeout toxic with timeout 0: connections accepted, never answered"},
		{Name: "payments-latency", Kind: KindLatency, Target: "payments", Duration: 20 * time.Second,
			Latency: 500 * time.Millisecond, Jitter: 200 * time.Millisecond,
			Note: "latency toxic 500 ms ± 200 ms on responses"},
		{Name: "payments-reset", Kind: KindResetPeer, Target: "payments", Duration: 5 * time.Second,
			Note: "reset_peer toxic: connections reset by peer"},
		{Name: "payments-kill", Kind: KindKill, Target: "payments", Duration: 5 * time.Second,
			Note: "SIGKILL of the Payments process while charges are in flight, restarted after the duration"},
	}
}

// FullFaults are the short profile plus the platform's own processes and
// infrastructure failing, and bad input on the bus.
func FullFaults() []Spec {
	return append(ShortFaults(),
		Spec{Name: "orchestrator-kill", Kind: KindKill, Target: "orchestrator-2", Duration: 5 * time.Second, Consumer: true,
			Note: "SIGKILL of one order-orchestrator member (group rebalances), restarted after the duration"},
		Spec{Name: "worker-kill", Kind: KindKill, Target: "worker-1", Duration: 5 * time.Second,
			Note: "SIGKILL of one saga worker (its open workflow tasks time out after saga.WorkflowTaskTimeout and run on the other), restarted after the duration"},
		Spec{Name: "kafka-restart", Kind: KindRestart, Target: "kafka", Duration: 5 * time.Second, Consumer: true,
			Note: "Kafka broker stopped and started"},
		// A consumer fault too: the orchestrators' only work is starting
		// workflows, and they must not commit an order Temporal has not taken.
		Spec{Name: "temporal-restart", Kind: KindRestart, Target: "temporal", Duration: 5 * time.Second, Consumer: true,
			Note: "Temporal server stopped and started (the orchestrators hold their offsets until it answers)"},
		Spec{Name: "redis-restart", Kind: KindRestart, Target: "redis", Duration: 5 * time.Second,
			Note: "Redis stopped and started (notification queue)"},
		Spec{Name: "payments-outage", Kind: KindOutage, Target: "payments", Duration: OutageBudget + 10*time.Second,
			Note: "payments refused longer than the outage budget: orders fail and must be compensated"},
		Spec{Name: "duplicate-created", Kind: KindDuplicate, Target: "orders", Duration: 2 * time.Second,
			Note: "recorded order.created records produced again: must not start a second saga"},
		Spec{Name: "poison-event", Kind: KindPoison, Target: "orders", Duration: 2 * time.Second,
			Note: "an undecodable record in topic orders: must go to orders.dlq, not stop the group"},
		Spec{Name: "relay-crash", Kind: KindRelayCrash, Target: "relay", Duration: 5 * time.Second,
			Note: "relay restarted with failpoint relay.before-publish: dies between DB commit and publish, then restarted clean"},
	)
}

// Faults returns the faults of a profile.
func Faults(profile string) ([]Spec, error) {
	switch profile {
	case ProfileShort:
		return ShortFaults(), nil
	case ProfileFull:
		return FullFaults(), nil
	}
	return nil, fmt.Errorf("--profile %q: want short or full", profile)
}

// DefaultDuration is the k6 DURATION of a profile: the 5x hold (40% of it)
// must hold every fault with room between them.
func DefaultDuration(profile string) time.Duration {
	if profile == ProfileFull {
		return 10 * time.Minute
	}
	return 3*time.Minute + 30*time.Second
}

// Peak returns the 5x hold of black-friday.js for a k6 DURATION: 20% warm
// up, 20% ramp up, 40% hold, 20% ramp down.
func Peak(duration time.Duration) (from, to time.Duration) {
	return duration * 2 / 5, duration * 4 / 5
}

// Plan lays faults out in the 5x hold of a run of duration: in order, with
// equal gaps between them, each start moved by a seeded jitter of up to a
// third of a gap. The same seed gives the same plan.
func Plan(faults []Spec, duration time.Duration, seed int64) ([]Planned, error) {
	from, to := Peak(duration)
	hold := to - from
	var busy time.Duration
	for _, f := range faults {
		if f.Duration <= 0 {
			return nil, fmt.Errorf("fault %s: duration must be positive", f.Name)
		}
		busy += f.Duration
	}
	if len(faults) == 0 {
		return nil, nil
	}
	gap := (hold - busy) / time.Duration(len(faults)+1)
	if gap < 2*time.Second {
		return nil, fmt.Errorf("the 5x hold of a %s run (%s) cannot hold %d faults lasting %s with room between them: raise --duration",
			duration, hold, len(faults), busy)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	out := make([]Planned, 0, len(faults))
	at := from
	for _, f := range faults {
		at += gap
		j := time.Duration(rng.Int64N(int64(2*gap/3)+1)) - gap/3
		out = append(out, Planned{Spec: f, At: (at + j).Round(100 * time.Millisecond)})
		at += f.Duration
	}
	return out, nil
}

// Select keeps the faults named in only (all when empty) minus those in skip.
func Select(faults []Spec, only, skip []string) ([]Spec, error) {
	known := map[string]bool{}
	for _, f := range faults {
		known[f.Name] = true
	}
	for _, n := range append(append([]string{}, only...), skip...) {
		if !known[n] {
			return nil, fmt.Errorf("unknown fault %q (this profile has: %s)", n, strings.Join(names(faults), ", "))
		}
	}
	in := func(list []string, n string) bool {
		for _, x := range list {
			if x == n {
				return true
			}
		}
		return false
	}
	var out []Spec
	for _, f := range faults {
		if (len(only) == 0 || in(only, f.Name)) && !in(skip, f.Name) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Override sets fault durations from "name=dur,name=dur".
func Override(faults []Spec, spec string) ([]Spec, error) {
	if strings.TrimSpace(spec) == "" {
		return faults, nil
	}
	out := append([]Spec(nil), faults...)
	for _, part := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("--fault-duration %q: want name=duration", part)
		}
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("--fault-duration %s: want a positive duration, got %q", name, val)
		}
		found := false
		for i := range out {
			if out[i].Name == name {
				out[i].Duration, found = d, true
			}
		}
		if !found {
			return nil, fmt.Errorf("--fault-duration: unknown fault %q (known: %s)", name, strings.Join(names(faults), ", "))
		}
	}
	return out, nil
}

func names(faults []Spec) []string {
	var out []string
	for _, f := range faults {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// Describe is the fault table --help prints.
func Describe(profile string, duration time.Duration, seed int64) string {
	faults, err := Faults(profile)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	from, to := Peak(duration)
	fmt.Fprintf(&b, "Profile %s, DURATION %s: the 5x hold runs from %s to %s of the load.\n", profile, duration, from, to)
	plan, err := Plan(faults, duration, seed)
	if err != nil {
		fmt.Fprintf(&b, "  (%v)\n", err)
	}
	for i, f := range faults {
		at := "-"
		if i < len(plan) {
			at = "+" + plan[i].At.String()
		}
		fmt.Fprintf(&b, "  %-18s %-11s %-15s %6s at %-8s %s\n", f.Name, f.Kind, f.Target, f.Duration, at, f.Note)
	}
	return b.String()
}
