package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const testToken = "service-token-0123456789abcdef0123456789"

func guarded(t *testing.T) (http.Handler, *UserTokens, *[]Principal) {
	t.Helper()
	users := NewUserTokens([]byte("user-key-0123456789abcdef0123456789"))
	g, err := NewGuard(testToken, []string{"127.0.0.1:8080", "localhost:8080"})
	if err != nil {
		t.Fatal(err)
	}
	g.Users = users
	g.Routes = map[string]Access{"POST /v1/things": AccessPublic, "GET /v1/things/{id}": AccessUser}
	var seen []Principal
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, PrincipalOf(r.Context()))
		WriteJSON(w, http.StatusOK, map[string]string{"pattern": r.Pattern})
	}
	mux.HandleFunc("POST /v1/things", ok)
	mux.HandleFunc("GET /v1/things/{id}", ok)
	mux.HandleFunc("POST /v1/things/{id}/refund", ok)
	mux.HandleFunc("GET /v1/internal", ok)
	HandleHealth(mux, nil)
	return g.Wrap(mux), users, &seen
}

func TestGuard(t *testing.T) {
	h, users, seen := guarded(t)
	now := time.Now()
	alice, err := users.Issue("alice", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := users.Issue("alice", now.Add(-2*time.Hour), time.Hour)
	other, _ := NewUserTokens([]byte("another-key-0123456789abcdef012345")).Issue("alice", now, time.Hour)
	const json = "application/json"
	tests := []struct {
		name, method, target, host, ctype, auth string
		code                                    int
		field                                   string
		who                                     Principal
	}{
		{name: "ok/public health without token", method: "GET", target: "/healthz", code: 200},
		{name: "ok/public post without token", method: "POST", target: "/v1/things", ctype: json, code: 200},
		{name: "ok/service token", method: "GET", target: "/v1/internal", auth: "Bearer " + testToken, code: 200, who: Principal{Service: true}},
		{name: "ok/scheme is case-insensitive", method: "GET", target: "/v1/internal", auth: "bearer " + testToken, code: 200, who: Principal{Service: true}},
		{name: "ok/service token on a user route", method: "GET", target: "/v1/things/1", auth: "Bearer " + testToken, code: 200, who: Principal{Service: true}},
		{name: "ok/user token on a user route", method: "GET", target: "/v1/things/1", auth: "Bearer " + alice, code: 200, who: Principal{User: "alice"}},
		{name: "ok/localhost", method: "GET", target: "/v1/internal", host: "localhost:8080", auth: "Bearer " + testToken, code: 200, who: Principal{Service: true}},
		{name: "ok/unknown route is the mux's 404", method: "GET", target: "/nope", code: 404},
		{name: "err/no token", method: "GET", target: "/v1/internal", code: 401, field: HeaderAuthorization},
		{name: "err/wrong token", method: "GET", target: "/v1/internal", auth: "Bearer " + testToken + "x", code: 401, field: HeaderAuthorization},
		{name: "err/not bearer", method: "GET", target: "/v1/internal", auth: "Basic " + testToken, code: 401, field: HeaderAuthorization},
		{name: "err/empty bearer", method: "GET", target: "/v1/internal", auth: "Bearer ", code: 401, field: HeaderAuthorization},
		{name: "err/user token on a service route", method: "POST", target: "/v1/things/1/refund", ctype: json, auth: "Bearer " + alice, code: 403, field: HeaderAuthorization},
		{name: "err/expired user token", method: "GET", target: "/v1/things/1", auth: "Bearer " + expired, code: 401, field: HeaderAuthorization},
		{name: "err/user token of another key", method: "GET", target: "/v1/things/1", auth: "Bearer " + other, code: 401, field: HeaderAuthorization},
		{name: "err/tampered user token", method: "GET", target: "/v1/things/1", auth: "Bearer " + strings.Replace(alice, "su1.YWxpY2U", "su1.Ym9i", 1), code: 401, field: HeaderAuthorization},
		{name: "err/other host", method: "GET", target: "/healthz", host: "evil.example:8080", code: 421, field: "Host"},
		{name: "err/other port", method: "GET", target: "/v1/internal", host: "127.0.0.1:9999", auth: "Bearer " + testToken, code: 421, field: "Host"},
		{name: "err/post as form", method: "POST", target: "/v1/things", ctype: "application/x-www-form-urlencoded", code: 415, field: "Content-Type"},
		{name: "err/post as text", method: "POST", target: "/v1/things", ctype: "text/plain", code: 415, field: "Content-Type"},
		{name: "err/body-less post without type", method: "POST", target: "/v1/things/1/refund", auth: "Bearer " + testToken, code: 415, field: "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			*seen = nil
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = "127.0.0.1:8080"
			if tt.host != "" {
				r.Host = tt.host
			}
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.auth != "" {
				r.Header.Set(HeaderAuthorization, tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("got %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tt.code)
			}
			if tt.code >= 400 && tt.code != 404 {
				var body struct{ Error, Field string }
				if err := jsonDecode(w.Body, &body); err != nil || body.Field != tt.field {
					t.Fatalf("body %s: field %q, want %q (%v)", w.Body, body.Field, tt.field, err)
				}
				if len(*seen) != 0 {
					t.Fatalf("handler ran for a refused request")
				}
				if strings.Contains(w.Body.String(), testToken) {
					t.Fatalf("answer shows the service token: %s", w.Body)
				}
			}
			if tt.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tt.code == 200 && tt.target != "/healthz" {
				if len(*seen) != 1 || (*seen)[0] != tt.who {
					t.Fatalf("handler saw %+v, want %+v", *seen, tt.who)
				}
			}
		})
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// Middleware labels a guarded request with its route, refused or not, as
// the services wire it: Middleware(Limit(Guard(mux))). Limit hands the
// Guard a copy of the request, so the route must not travel on r.Pattern
// (it did, and every service's metrics said "unmatched").
func TestGuardKeepsRouteForMetrics(t *testing.T) {
	h, _, _ := guarded(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	chain := Middleware(Limit(h, Limits{MaxInFlight: 4, Timeout: time.Second}, m), slog.New(slog.DiscardHandler), m)
	for _, tc := range []struct{ method, path, auth string }{
		{"GET", "/v1/internal", ""},                            // refused: 401
		{"GET", "/v1/internal", "Bearer " + testToken},         // served
		{"POST", "/v1/things/x/refund", "Bearer " + testToken}, // served
	} {
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		r.Host = "127.0.0.1:8080"
		r.Header.Set("Content-Type", "application/json")
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		chain.ServeHTTP(httptest.NewRecorder(), r)
	}
	for _, want := range []struct{ route, code string }{
		{"GET /v1/internal", "401"},
		{"GET /v1/internal", "200"},
		{"POST /v1/things/{id}/refund", "200"},
	} {
		if n := testutil.ToFloat64(m.requests.WithLabelValues(want.route, strings.Fields(want.route)[0], want.code)); n != 1 {
			t.Errorf("requests{route=%q, code=%s} = %v, want 1", want.route, want.code, n)
		}
	}
	if n := testutil.ToFloat64(m.requests.WithLabelValues("unmatched", "GET", "200")); n != 0 {
		t.Errorf("a matched request was counted as unmatched")
	}
}

func TestAllowed(t *testing.T) {
	bg := httptest.NewRequest("GET", "/", nil).Context()
	tests := []struct {
		name string
		p    *Principal
		user string
		want bool
	}{
		{"ok/service for anyone", &Principal{Service: true}, "bob", true},
		{"ok/user for itself", &Principal{User: "bob"}, "bob", true},
		{"err/user for another", &Principal{User: "alice"}, "bob", false},
		{"err/nobody", nil, "bob", false},
		{"err/empty user is nobody", &Principal{}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := bg
			if tt.p != nil {
				ctx = WithPrincipal(ctx, *tt.p)
			}
			if got := Allowed(ctx, tt.user); got != tt.want {
				t.Fatalf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUserTokens(t *testing.T) {
	u := NewUserTokens([]byte("user-key-0123456789abcdef0123456789"))
	now := time.Unix(1_800_000_000, 0)
	tok, err := u.Issue("u-1.with.dots", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := u.Verify(tok, now.Add(59*time.Minute)); err != nil || got != "u-1.with.dots" {
		t.Fatalf("Verify = %q, %v", got, err)
	}
	if _, err := u.Verify(tok, now.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Verify at expiry = %v, want expired", err)
	}
	for _, bad := range []struct{ user string }{{""}, {"a\x00b"}, {strings.Repeat("x", 129)}} {
		if _, err := u.Issue(bad.user, now, time.Hour); err == nil {
			t.Errorf("Issue(%q) issued a token", bad.user)
		}
	}
	if _, err := u.Issue("u-1", now, MaxUserTokenTTL+time.Second); err == nil {
		t.Error("Issue with a ttl over the maximum issued a token")
	}
}

func TestBearer(t *testing.T) {
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Clone())
	}))
	defer srv.Close()
	c := &http.Client{Transport: Bearer("tok", nil)}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get(HeaderAuthorization) != "" {
		t.Fatal("Bearer modified the caller's request")
	}
	own, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("x"))
	own.Header.Set(HeaderAuthorization, "Bearer mine")
	own.Header.Set("Content-Type", "text/plain")
	if _, err := c.Do(own); err != nil {
		t.Fatal(err)
	}
	get, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := c.Do(get); err != nil {
		t.Fatal(err)
	}
	want := []struct{ auth, ctype string }{{"Bearer tok", "application/json"}, {"Bearer mine", "text/plain"}, {"Bearer tok", ""}}
	for i, w := range want {
		if a, ct := got[i].Get(HeaderAuthorization), got[i].Get("Content-Type"); a != w.auth || ct != w.ctype {
			t.Errorf("request %d: Authorization %q Content-Type %q, want %q %q", i, a, ct, w.auth, w.ctype)
		}
	}
}
