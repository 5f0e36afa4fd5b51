package orchestrator

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSlowRecordSaysWhereItsTimeWent: a record over the threshold is logged
// with its time split into delivery, queue and handling, which add up to
// the total; one under it, or any with the log turned off, is not.
func TestSlowRecordSaysWhereItsTimeWent(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 17, 25, 28, 0, time.UTC)
	r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 41, Timestamp: t0}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name string
		slow time.Duration
		done int
		want map[string]time.Duration // nil: nothing logged
	}{
		{"over the threshold", 0, 80, map[string]time.Duration{"total": 80 * time.Millisecond, "delivery": 10 * time.Millisecond, "queued": 20 * time.Millisecond, "handling": 50 * time.Millisecond}},
		{"at the threshold", 0, 50, map[string]time.Duration{"total": 50 * time.Millisecond, "delivery": 10 * time.Millisecond, "queued": 20 * time.Millisecond, "handling": 20 * time.Millisecond}},
		{"under it", 0, 49, nil},
		{"turned off", -1, 500, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := New(Config{SlowRecord: tt.slow}, nil, nil, slog.New(slog.NewJSONHandler(&buf, nil)), nil, nil)
			c.slow(r, at(10), at(30), at(tt.done))
			if tt.want == nil {
				if buf.Len() > 0 {
					t.Fatalf("logged %s, want nothing", buf.String())
				}
				return
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %q: %v", buf.String(), err)
			}
			if line["msg"] != "slow record" || line["offset"] != float64(41) {
				t.Errorf("line = %v, want msg slow record at offset 41", line)
			}
			for k, want := range tt.want {
				if got := time.Duration(line[k].(float64)); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
		})
	}
}
