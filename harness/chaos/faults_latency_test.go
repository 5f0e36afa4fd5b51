package chaos

import (
	"testing"
	"time"
)

func TestLatencyDelaysAnswers(t *testing.T) {
	breakPath(t, Spec{Name: "slow", Kind: KindLatency, Target: "payments", Latency: 400 * time.Millisecond, Jitter: 50 * time.Millisecond},
		func(body string, took time.Duration, err error) string {
			if err != nil || body != "ok" || took < 340*time.Millisecond {
				return "want ok after at least 350 ms, got " + body + " " + errString(err) + " after " + took.String()
			}
			return ""
		})
}
