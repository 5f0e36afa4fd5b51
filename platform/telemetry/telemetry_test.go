package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestLoggerCarriesCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger("orders", &buf)
	ctx := WithCorrelationID(context.Background(), "order-123")
	log.InfoContext(ctx, "order accepted", "order_id", "123")
	log.Info("no context")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2", len(lines))
	}
	var first, second map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[1], &second); err != nil {
		t.Fatal(err)
	}
	if got, want := first["correlation_id"], "order-123"; got != want {
		t.Errorf("correlation_id = %v, want %v", got, want)
	}
	if got, want := first["service"], "orders"; got != want {
		t.Errorf("service = %v, want %v", got, want)
	}
	if _, ok := second["correlation_id"]; ok {
		t.Errorf("line without context has a correlation_id: %s", lines[1])
	}
}
