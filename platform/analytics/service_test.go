package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestServiceListsRulesAndReadiness(t *testing.T) {
	rs, err := ParseRules(DefaultRules, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := errors.New("kafka down")
	svc := &Service{Rules: rs, Ready: func(context.Context) error { return ready }}
	h := svc.Router()

	get := func(path string) (int, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body["error"] != "kafka down" {
		t.Fatalf("/readyz = %d %v, want 503 naming the cause", code, body)
	}
	ready = nil
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d, want 200", code)
	}
	code, body := get("/v1/rules")
	if code != http.StatusOK {
		t.Fatalf("/v1/rules = %d", code)
	}
	rules, _ := body["rules"].([]any)
	if len(rules) != 2 {
		t.Fatalf("/v1/rules lists %d rules, want 2: %v", len(rules), body)
	}
	first := rules[0].(map[string]any)
	targets := first["targets"].([]any)
	if first["name"] != "high-value-orders" || targets[0].(map[string]any)["id"] != "kafka:analytics.high-value" {
		t.Fatalf("first rule = %v", first)
	}
	if _, ok := first["pattern"].(map[string]any)["data"]; !ok {
		t.Fatalf("pattern not listed as JSON: %v", first["pattern"])
	}
}
