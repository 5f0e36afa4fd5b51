// Package webtest helps test a Stampede HTTP service without a network:
// requests as its clients send them, and checks of its answers as
// platform/web writes them.
package webtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/platform/web"
)

// Request is a request to target with body (sent as JSON unless empty) and
// headers given as name, value pairs; an empty value sets nothing.
func Request(method, target, body string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	return r
}

// Answer is what a test expects of an answer: its status, the "error" and
// "field" of its body (both "" for a success), and whether it is marked
// Idempotent-Replayed.
type Answer struct {
	Code         int
	Error, Field string
	Replayed     bool
}

// Check fails t unless w holds want.
func Check(t testing.TB, w *httptest.ResponseRecorder, want Answer) {
	t.Helper()
	var got struct{ Error, Field string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q is not JSON: %v", w.Body, err)
	}
	if w.Code != want.Code || got.Error != want.Error || got.Field != want.Field {
		t.Fatalf("got %d error %q field %q (%s), want %d error %q field %q",
			w.Code, got.Error, got.Field, strings.TrimSpace(w.Body.String()), want.Code, want.Error, want.Field)
	}
	if replayed := w.Header().Get(web.HeaderReplayed) == "true"; replayed != want.Replayed {
		t.Errorf("%s = %v, want %v", web.HeaderReplayed, replayed, want.Replayed)
	}
}

// Refusal fails t unless err is how bad input must be refused: a
// *web.Error with a 4xx status, a message, and the field it is about.
func Refusal(t testing.TB, err error) {
	t.Helper()
	var we *web.Error
	if !errors.As(err, &we) {
		t.Fatalf("refused with %T %v, want a *web.Error", err, err)
	}
	if we.Status < 400 || we.Status >= 500 || we.Message == "" || we.Field == "" {
		t.Fatalf("refused with %d %q on field %q, want a 4xx naming the field", we.Status, we.Message, we.Field)
	}
}
