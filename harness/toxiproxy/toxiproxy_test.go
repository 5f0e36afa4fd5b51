package toxiproxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// The API refuses proxies that would listen beyond loopback, whichever way
// they come (create, populate, update), and creates the others.
func TestLoopbackOnly(t *testing.T) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	defer srv.Collection.Clear()
	h := LoopbackOnly(srv.Routes())
	tests := []struct {
		name, method, path, body string
		code                     int
	}{
		{"ok/create on 127.0.0.1", "POST", "/proxies", `{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`, 201},
		{"ok/create on localhost", "POST", "/proxies", `{"name":"b","listen":"localhost:0","upstream":"127.0.0.1:1"}`, 201},
		{"ok/update without listen", "POST", "/proxies/a", `{"enabled":false}`, 200},
		{"ok/populate on loopback", "POST", "/populate", `[{"name":"c","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}]`, 201},
		{"ok/reads pass", "GET", "/proxies", ``, 200},
		{"ok/toxics pass", "POST", "/proxies/a/toxics", `{"type":"latency","attributes":{"latency":1}}`, 200},
		{"err/create on every interface", "POST", "/proxies", `{"name":"d","listen":"0.0.0.0:0","upstream":"127.0.0.1:1"}`, 400},
		{"err/create without host", "POST", "/proxies", `{"name":"e","listen":":0","upstream":"127.0.0.1:1"}`, 400},
		{"err/create without listen", "POST", "/proxies", `{"name":"f","upstream":"127.0.0.1:1"}`, 400},
		{"err/create on a name", "POST", "/proxies", `{"name":"g","listen":"example.com:0","upstream":"127.0.0.1:1"}`, 400},
		{"err/update to every interface", "PATCH", "/proxies/a", `{"listen":"0.0.0.0:18999"}`, 400},
		{"err/populate with one outside", "POST", "/populate", `[{"name":"h","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"},{"name":"i","listen":"[::]:0","upstream":"127.0.0.1:1"}]`, 400},
		{"err/not json", "POST", "/proxies", `listen=0.0.0.0:1`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("%s %s = %d (%s), want %d", tt.method, tt.path, w.Code, w.Body, tt.code)
			}
			// Every refusal of an address names the field; a body that is
			// not JSON names none.
			if wantField := map[bool]string{true: "listen"}[tt.code == http.StatusBadRequest && tt.name != "err/not json"]; tt.code == http.StatusBadRequest {
				var got struct{ Field string }
				json.Unmarshal(w.Body.Bytes(), &got)
				if got.Field != wantField {
					t.Errorf("field = %q, want %q (%s)", got.Field, wantField, w.Body)
				}
			}
		})
	}
	for _, name := range []string{"d", "e", "f", "g", "h", "i"} {
		if _, err := srv.Collection.Get(name); err == nil {
			t.Errorf("proxy %s was created", name)
		}
	}
	p, err := srv.Collection.Get("a")
	if err != nil || !strings.HasPrefix(p.Listen, "127.0.0.1:") {
		t.Errorf("proxy a: %v listening on %v", err, p)
	}
}

// In a container the proxies start on every interface (the engine publishes
// them on the host's loopback), and toxiproxy's clients send that address
// back with every update: those addresses stay allowed, no other does.
func TestLoopbackOnlyKeepsTheStartAddresses(t *testing.T) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	defer srv.Collection.Clear()
	h := LoopbackOnly(srv.Routes(), "0.0.0.0:18082")
	for _, tt := range []struct {
		name, method, path, body string
		code                     int
	}{
		// 404: past the check, to a proxy that does not exist (nothing binds).
		{"ok/update keeps [::]:18082", "POST", "/proxies/nope", `{"enabled":false,"listen":"[::]:18082"}`, 404},
		{"ok/update keeps 0.0.0.0:18082", "POST", "/proxies/nope", `{"enabled":true,"listen":"0.0.0.0:18082"}`, 404},
		{"err/another port", "POST", "/proxies", `{"name":"x","listen":"0.0.0.0:18083","upstream":"127.0.0.1:1"}`, 400},
		{"err/a named host on the port", "POST", "/proxies", `{"name":"y","listen":"example.com:18082","upstream":"127.0.0.1:1"}`, 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			if w.Code != tt.code {
				t.Fatalf("%s %s = %d (%s), want %d", tt.method, tt.path, w.Code, w.Body, tt.code)
			}
		})
	}
}
