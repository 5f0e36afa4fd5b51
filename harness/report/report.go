// Package report writes the result of a chaos run: report.json with every
// figure, and a self-contained report.html (inline SVG, no script, no
// external asset) a person would rather look at than read.
//
// It must never compute a verdict: it shows what the verifier decided.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/harness/verify"
)

// Result is everything a run produced.
type Result struct {
	Run     string            `json:"run"`
	Profile string            `json:"profile"`
	Seed    int64             `json:"seed"`
	Command string            `json:"command"`
	Config  map[string]string `json:"config"`
	// Warmup is what ran before the run to warm the stack (not audited).
	Warmup   *Warmup   `json:"warmup,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// The load phase (k6 running).
	LoadStart time.Time `json:"loadStart"`
	LoadEnd   time.Time `json:"loadEnd"`
	Passed    bool      `json:"passed"`
	Error     string    `json:"error,omitempty"` // why the run could not complete

	SteadyBefore []Probe       `json:"steadyStateBefore"`
	SteadyAfter  []Probe       `json:"steadyStateAfter"`
	Faults       []FaultRecord `json:"faults"`
	Rollback     []string      `json:"rollback"`

	Placed       int            `json:"ordersPlaced"` // ledger lines
	Counts       map[string]int `json:"counts"`       // by class
	Compensation stats.Dist     `json:"compensation"`
	// CompensationTimes are the compensated orders' times, for the histogram.
	CompensationTimes []time.Duration               `json:"compensationTimesNs,omitempty"`
	Lag               []verify.LagReport            `json:"lag"`
	LagSeries         map[string][]verify.LagSample `json:"lagSeries,omitempty"`
	Timeline          []Second                      `json:"timeline"`
	Gates             []verify.Gate                 `json:"gates"`
	Stock             []verify.StockMismatch        `json:"stockMismatches,omitempty"`
	Gaps              []string                      `json:"gaps,omitempty"`    // what could not be read (histories, views)
	Orphans           []verify.Orphan               `json:"orphans,omitempty"` // in a store, not in the ledger
	Ledger            *verify.LedgerCheck           `json:"ledgerCheck,omitempty"`
	Problems          []verify.Verdict              `json:"problems,omitempty"` // every order not ok/compensated/rejected
	K6                K6                            `json:"k6"`
	// Noise is the CPU hog run beside the load (stampede chaos --noise).
	Noise *NoiseReport `json:"noise,omitempty"`
}

// NoiseReport is what the CPU hog beside a run took.
type NoiseReport struct {
	Cores     float64       `json:"cores"`     // asked for
	Wall      time.Duration `json:"wallNs"`    // how long it ran
	CPU       time.Duration `json:"cpuNs"`     // CPU it used (user + system)
	CoresUsed float64       `json:"coresUsed"` // CPU / Wall
}

// Probe is one steady-state check.
type Probe struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// FaultRecord is one fault as it happened.
type FaultRecord struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	Target    string        `json:"target"`
	Note      string        `json:"note"`
	Consumer  bool          `json:"consumer"`
	PlannedAt time.Duration `json:"plannedAtNs"` // offset from the load start
	Planned   time.Duration `json:"plannedDurationNs"`
	Start     time.Time     `json:"start"`
	End       time.Time     `json:"end"`
	Detail    string        `json:"detail,omitempty"` // e.g. in-flight evidence of a kill
	Error     string        `json:"error,omitempty"`
}

// K6 is what k6 said.
type K6 struct {
	Exit     int      `json:"exit"`
	Failed   []string `json:"failedThresholds,omitempty"`
	Report   string   `json:"report"` // k6's HTML export, relative to the run directory
	Log      string   `json:"log"`
	Ledger   string   `json:"ledger"`
	Summary  string   `json:"summary"`
	Duration string   `json:"duration"`
	BaseRate float64  `json:"baseRate"`
}

// Second is one second of the load: placements and their accept latency.
type Second struct {
	At     time.Time `json:"at"`
	Placed int       `json:"placed"`
	Acked  int       `json:"acked"`
	Failed int       `json:"failed"` // rejected or unknown
	P50Ms  float64   `json:"p50Ms"`
	P99Ms  float64   `json:"p99Ms"`
}

// Timeline folds ledger attempts into seconds by send time.
func Timeline(attempts []verify.Attempt) []Second {
	by := map[int64][]verify.Attempt{}
	for _, a := range attempts {
		if a.SentAt.IsZero() {
			continue
		}
		by[a.SentAt.Unix()] = append(by[a.SentAt.Unix()], a)
	}
	keys := make([]int64, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	var out []Second
	for _, k := range keys {
		s := Second{At: time.Unix(k, 0).UTC()}
		var ms []time.Duration
		for _, a := range by[k] {
			s.Placed++
			if a.Outcome == verify.OutcomeAcked {
				s.Acked++
				ms = append(ms, time.Duration(a.Ms*float64(time.Millisecond)))
			} else {
				s.Failed++
			}
		}
		d := stats.Summarise(ms)
		s.P50Ms, s.P99Ms = float64(d.P50)/1e6, float64(d.P99)/1e6
		out = append(out, s)
	}
	return out
}

// Write writes report.json and report.html into dir.
func Write(dir string, r *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), b, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	html, err := HTML(r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.html"), html, 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// Warmup is the orders placed through the full saga before a run, to warm a
// freshly started stack; none of them is the run's.
type Warmup struct {
	Duration   time.Duration `json:"durationNs"`
	Rate       int           `json:"rate"`
	Placed     int           `json:"placed"`
	Rejected   int           `json:"rejected"`
	Completed  int           `json:"completed"`
	Failed     int           `json:"failed"`
	NotSettled int           `json:"notSettled"`
	Ended      time.Time     `json:"ended"`
}
