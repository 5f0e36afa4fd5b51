package notification

import (
	"testing"
	"time"
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
	} {
		if _, err := NewTask(p); err == nil {
			t.Errorf("NewTask(%+v) accepted a bad payload", p)
		}
	}
}
