package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPoisonIsAuditedInTheDeadLetterTopic(t *testing.T) {
	tests := []struct {
		name       string
		deadLetter bool // the orchestrator dead-letters the poison record
		wantDetail string
		wantError  string
	}{
		{"ok/dead-lettered", true, "poison record key chaos-poison-r1 produced to orders; found in orders.dlq", ""},
		{"err/never dead-lettered", false, "poison record key chaos-poison-r1 produced to orders", "the poison record never reached orders.dlq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			brokers := fakeKafka(t)
			_, r := oneFault(Config{Brokers: brokers, Topic: "orders", Run: "r1"}, Spec{Name: "poison-event", Kind: KindPoison, Target: "orders"})
			r.fault.(*poison).wait = 500 * time.Millisecond
			ctx := context.Background()
			if err := r.fault.Inject(ctx); err != nil {
				t.Fatalf("inject: %v", err)
			}
			recs := read(t, brokers, "orders", 1)
			if len(recs) != 1 || string(recs[0].Key) != "chaos-poison-r1" {
				t.Fatalf("orders holds %d records, want the poison one", len(recs))
			}
			if tt.deadLetter {
				if err := produce(ctx, brokers, []*kgo.Record{{Topic: dlqTopic, Key: recs[0].Key, Value: recs[0].Value}}); err != nil {
					t.Fatal(err)
				}
			}
			r.fault.(auditor).Audit(ctx)
			if got := r.record(); got.Detail != tt.wantDetail || got.Error != tt.wantError {
				t.Errorf("record detail %q error %q, want %q, %q", got.Detail, got.Error, tt.wantDetail, tt.wantError)
			}
		})
	}
}
