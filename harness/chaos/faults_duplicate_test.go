package chaos

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stampede-dev/stampede/platform/event"
)

func orderCreated(t *testing.T, orderID string) *kgo.Record {
	t.Helper()
	data, _ := json.Marshal(map[string]string{"orderId": orderID})
	v, _ := json.Marshal(event.Envelope{ID: "e-" + orderID, Type: event.TypeOrderCreated, Data: data})
	return &kgo.Record{Topic: "orders", Key: []byte("u-1"), Value: v,
		Headers: []kgo.RecordHeader{{Key: event.HeaderEventType, Value: []byte(event.TypeOrderCreated)}}}
}

func TestDuplicateProducesRecordedOrdersAgain(t *testing.T) {
	brokers := fakeKafka(t)
	e, r := oneFault(Config{Brokers: brokers}, Spec{Name: "duplicate-created", Kind: KindDuplicate, Target: "orders"})
	e.recorder = &Recorder{records: []*kgo.Record{orderCreated(t, "o-1"), orderCreated(t, "o-2")}, max: 50}
	if err := r.fault.Inject(context.Background()); err != nil {
		t.Fatalf("inject: %v", err)
	}
	got := r.record()
	if got.Start.IsZero() || got.Error != "" || got.Detail != "re-produced 2 order.created records: o-1, o-2" {
		t.Errorf("record %+v: want started, the two orders named", got)
	}
	if recs := read(t, brokers, "orders", 2); len(recs) != 2 || string(recs[0].Key) != "u-1" {
		t.Errorf("orders holds %d records, want the 2 copies", len(recs))
	}
}

func TestDuplicateWithNothingRecorded(t *testing.T) {
	brokers := fakeKafka(t)
	e, r := oneFault(Config{Brokers: brokers}, Spec{Name: "duplicate-created", Kind: KindDuplicate, Target: "orders"})
	e.recorder = &Recorder{}
	if err := r.fault.Inject(context.Background()); err != nil {
		t.Fatalf("inject: %v", err)
	}
	if got := r.record(); got.Start.IsZero() || !strings.Contains(got.Error, "no order.created record was seen") {
		t.Errorf("record %+v: want started, and an error saying nothing was recorded", got)
	}
}
