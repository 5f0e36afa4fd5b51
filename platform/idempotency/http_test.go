package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/platform/web"
)

func TestPost(t *testing.T) {
	read := func(r *http.Request) (body, string, string, error) {
		if r.URL.Query().Get("bad") != "" {
			return body{}, "", "", web.BadRequest("qty", "must be a whole number")
		}
		return body{"o-1", 1}, "o-1", "k-1", nil
	}
	tests := []struct {
		name, query  string
		res          Result
		err          error
		wantCode     int
		wantBody     string // "" for none at all
		wantReplayed bool
	}{
		{"ok/recorded answer, byte for byte", "", Result{Code: 201, Body: json.RawMessage(`{"id": "r-1"}`)}, nil, 201, `{"id": "r-1"}`, false},
		{"ok/replayed", "", Result{Code: 409, Body: json.RawMessage(`{"error":"out_of_stock"}`), Replayed: true}, nil, 409, `{"error":"out_of_stock"}`, true},
		{"err/bad input never done", "?bad=1", Result{}, nil, 400, `{"error":"must be a whole number","field":"qty"}`, false},
		{"err/key reused", "", Result{}, errReused, 422, `{"detail":"other items","error":"idempotency_key_reused","field":"Idempotency-Key"}`, false},
		{"err/store down", "", Result{}, errors.New("conn reset"), 500, `{"error":"internal error"}`, false},
		{"err/caller gone: nothing answered", "", Result{}, ErrGone, 200, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotKey, gotCID string
			done := false
			p := Post[body]{Read: read, Reused: errReused, Detail: "other items", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Do: func(_ context.Context, _ body, key, cid string) (Result, error) {
					done, gotKey, gotCID = true, key, cid
					return tt.res, tt.err
				}}
			w := httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/things"+tt.query, nil))
			if w.Code != tt.wantCode || strings.TrimSuffix(w.Body.String(), "\n") != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body, tt.wantCode, tt.wantBody)
			}
			if got := w.Header().Get(web.HeaderReplayed) == "true"; got != tt.wantReplayed {
				t.Errorf("replayed = %v, want %v", got, tt.wantReplayed)
			}
			if tt.query != "" {
				if done {
					t.Error("bad input was done")
				}
				return
			}
			if gotKey != "k-1" || gotCID != "o-1" {
				t.Errorf("done with key %q, correlation id %q; want k-1 and the order id", gotKey, gotCID)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	for _, tt := range []struct {
		name, header, want string
		wantErr            bool
	}{
		{"ok/the header", "o-1:reserve", "o-1:reserve", false},
		{"ok/none: the order", "", "order:o-1", false},
		{"err/too long", strings.Repeat("k", 17), "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set(web.HeaderIdempotencyKey, tt.header)
			got, err := KeyOf(r, 16, "o-1")
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Errorf("KeyOf = %q, %v; want %q (error: %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
