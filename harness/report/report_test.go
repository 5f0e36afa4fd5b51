package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stampede-dev/stampede/harness/stats"
	"github.com/stampede-dev/stampede/harness/verify"
)

// synthetic is a small failing run: one lost order, a lag spike, a fault.
func synthetic() *Result {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var attempts []verify.Attempt
	for i := 0; i < 120; i++ {
		a := verify.Attempt{LedgerLine: verify.LedgerLine{OrderID: "o", Outcome: verify.OutcomeAcked}, SentAt: t0.Add(time.Duration(i) * 250 * time.Millisecond), Ms: float64(10 + i%7)}
		if i%40 == 0 {
			a.Outcome = verify.OutcomeUnknown
		}
		attempts = append(attempts, a)
	}
	lag := []verify.LagSample{}
	for i := 0; i < 300; i++ {
		d := 5 * time.Millisecond
		if i == 150 {
			d = 2 * time.Second
		}
		lag = append(lag, verify.LagSample{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Lag: d})
	}
	gates := []verify.Gate{
		{Name: "lost orders", Threshold: "= 0", Value: "1", Pass: false, Orders: []string{"order-lost-1"}, Detail: "order-lost-1: no workflow order-order-lost-1 in Temporal"},
		{Name: "compensation time", Threshold: "p100 < 30s", Value: "n=2", Pass: true},
	}
	comp := []time.Duration{2 * time.Second, 31 * time.Second}
	return &Result{
		Run: "20261125T100000Z-chaos-short", Profile: "short", Seed: 7, Command: "stampede chaos --profile short --seed 7",
		Config:  map[string]string{"max-lag": "100ms", "max-compensation": "30s", "duration": "30s"},
		Started: t0.Add(-time.Minute), Finished: t0.Add(2 * time.Minute), LoadStart: t0, LoadEnd: t0.Add(30 * time.Second),
		Faults:       []FaultRecord{{Name: "payments-refused", Kind: "disable", Target: "payments", Start: t0.Add(10 * time.Second), End: t0.Add(15 * time.Second), PlannedAt: 10 * time.Second, Planned: 5 * time.Second}},
		SteadyBefore: []Probe{{Name: "components healthy", OK: true}}, SteadyAfter: []Probe{{Name: "components healthy", OK: false, Detail: "payments not ready"}},
		Placed: len(attempts), Counts: map[string]int{"ok": 100, "lost": 1, "compensated": 2},
		Compensation: stats.Summarise(append([]time.Duration(nil), comp...)), CompensationTimes: comp,
		LagSeries: map[string][]verify.LagSample{"sampler": lag},
		Lag:       []verify.LagReport{{Source: "sampler", Samples: 300, Max: 2 * time.Second}},
		Timeline:  Timeline(attempts), Gates: gates,
		Problems: []verify.Verdict{{OrderID: "order-lost-1", Class: verify.ClassLost, Reasons: []string{"no workflow"}}},
		K6:       K6{Report: "k6-report.html", Exit: 99, Failed: []string{"dropped_iterations"}},
	}
}

func TestWriteIsSelfContainedAndShowsTheGates(t *testing.T) {
	dir := t.TempDir()
	r := synthetic()
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	for _, want := range []string{
		"FAIL", "lost orders", "order-lost-1", "compensation time", "p100 &lt; 30s",
		`href="k6-report.html"`, "payments-refused", "seed <b>7</b>", "<svg", `class="fault"`, `class="threshold"`, `class="bar over"`,
		"payments not ready",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Self-contained: nothing is fetched (no script, stylesheet, image or
	// font from anywhere); the only links are to files beside it.
	for _, re := range []string{`<script`, `<link`, `src=`, `@import`, `url\(`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("report.html is not self-contained: it has %s", re)
		}
	}
	for _, m := range regexp.MustCompile(`href="([^"#]*)"`).FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[1], "//") {
			t.Errorf("report.html links outside the run directory: %s", m[1])
		}
	}

	var back Result
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if back.Seed != 7 || len(back.Gates) != 2 || back.Gates[0].Pass || len(back.Faults) != 1 || back.Faults[0].Start.IsZero() || back.Counts["lost"] != 1 {
		t.Errorf("report.json round trip lost figures: %+v", back)
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	got := Timeline([]verify.Attempt{
		{LedgerLine: verify.LedgerLine{Outcome: verify.OutcomeAcked}, SentAt: t0, Ms: 10},
		{LedgerLine: verify.LedgerLine{Outcome: verify.OutcomeAcked}, SentAt: t0.Add(500 * time.Millisecond), Ms: 30},
		{LedgerLine: verify.LedgerLine{Outcome: verify.OutcomeUnknown}, SentAt: t0.Add(1500 * time.Millisecond), Ms: 10000},
	})
	if len(got) != 2 || got[0].Placed != 2 || got[0].Acked != 2 || got[0].P99Ms != 30 || got[1].Failed != 1 {
		t.Errorf("got %+v", got)
	}
}

// A report is written whatever its figures hold: a negative or huge
// compensation time is drawn, never a panic that loses the whole report.
func TestHistogramDrawsEveryValue(t *testing.T) {
	got := string(histogram([]time.Duration{-191 * time.Second, 0, time.Second, 3*time.Minute + 19*time.Second}, 30*time.Second))
	if !strings.Contains(got, "<svg") || strings.Count(got, "<rect") < 3 {
		t.Fatalf("histogram of negative, zero and large times drew %q", got)
	}
}
