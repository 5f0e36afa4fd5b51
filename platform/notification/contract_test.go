package notification

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNewTask(t *testing.T) {
	p := Payload{OrderID: "o-1", UserID: "u-1", Template: TemplateOrderShipped, Data: map[string]string{"trackingNumber": "T1"}, RequestedAt: time.Now()}
	task, err := NewTask(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := task.Type(), TemplateOrderShipped; got != want {
		t.Errorf("type = %q, want %q", got, want)
	}
	got, err := DecodePayload(task.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != "o-1" || got.Data["trackingNumber"] != "T1" {
		t.Errorf("payload round trip = %+v", got)
	}
	if got, want := TaskID("o-1", TemplateOrderShipped), "o-1:order-shipped"; got != want {
		t.Errorf("TaskID = %q, want %q", got, want)
	}
}

func TestNewTaskRefusesBadPayload(t *testing.T) {
	for _, p := range []Payload{
		{UserID: "u", Template: TemplateOrderFailed},
		{OrderID: "o", Template: TemplateOrderFailed},
		{OrderID: "o", UserID: "u", Template: "order-exploded"},
		{OrderID: "o 1", UserID: "u", Template: TemplateOrderFailed},
		{OrderID: "o", UserID: "u\x00", Template: TemplateOrderFailed},
		{OrderID: "o", UserID: strings.Repeat("u", 129), Template: TemplateOrderFailed},
		{OrderID: "o", UserID: "u", CorrelationID: "a b", Template: TemplateOrderFailed},
		{OrderID: "o", UserID: "u", Template: TemplateOrderFailed, Data: map[string]string{"": "x"}},
		{OrderID: "o", UserID: "u", Template: TemplateOrderFailed, Data: manyEntries()},
	} {
		if _, err := NewTask(p); err == nil {
			t.Errorf("NewTask(%+v) accepted a bad payload", p)
		}
	}
}

func manyEntries() map[string]string {
	m := map[string]string{}
	for i := range MaxDataEntries + 1 {
		m[fmt.Sprint("k", i)] = "v"
	}
	return m
}

// A data value is message text: NewTask cleans and cuts it rather than
// refusing the notification (the saga retries a refused one for days).
func TestNewTaskCleansDataValues(t *testing.T) {
	task, err := NewTask(Payload{OrderID: "o-1", UserID: "u-1", Template: TemplateOrderFailed,
		Data: map[string]string{"reason": "bad\x00input\xff" + strings.Repeat("r", 2*MaxDataValue)}})
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	p, err := DecodePayload(task.Payload())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	got := p.Data["reason"]
	if n := utf8.RuneCountInString(got); n != MaxDataValue || !strings.HasPrefix(got, "bad input\uFFFD") || !strings.HasSuffix(got, "…") {
		t.Errorf("reason = %.30q... (%d characters), want it cleaned and cut to %d", got, n, MaxDataValue)
	}
	if _, err := DecodePayload([]byte(`{"orderId":"o-1","userId":"u-1","template":"order-failed","data":{"reason":"a\u0000b"}}`)); err == nil ||
		!strings.Contains(err.Error(), "data.reason") {
		t.Errorf("DecodePayload of a NUL in data = %v, want an error naming data.reason", err)
	}
}
