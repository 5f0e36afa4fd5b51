// Package toxiproxy runs the toxiproxy server embedded in a Stampede process,
// with the proxies the platform routes through it (Payments first of all), so
// the demo path and the chaos path are the same path.
//
// It must never add toxics by itself: faults are the chaos harness's call.
package toxiproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/stampede-dev/stampede/platform/web"
)

// Proxy is one proxy to create at start.
type Proxy struct {
	Name     string // e.g. "payments"
	Listen   string // 127.0.0.1:18082
	Upstream string // 127.0.0.1:8082
}

// Serve runs the toxiproxy API on apiAddr with proxies created and enabled,
// until ctx is done.
func Serve(ctx context.Context, apiAddr string, proxies []Proxy) error {
	logger := zerolog.New(os.Stderr).With().Timestamp().Str("service", "toxiproxy").Logger().Level(zerolog.InfoLevel)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	// Per-proxy byte counters on /metrics, so dashboards see traffic stop during a fault.
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	for _, p := range proxies {
		proxy := toxiproxy.NewProxy(srv, p.Name, p.Listen, p.Upstream)
		if err := srv.Collection.Add(proxy, true); err != nil {
			return fmt.Errorf("toxiproxy: create proxy %s on %s -> %s: %w", p.Name, p.Listen, p.Upstream, err)
		}
	}
	defer srv.Collection.Clear()
	// The addresses the operator gave at start (beyond loopback only in a
	// container, where the engine publishes them on the host's loopback)
	// stay allowed: toxiproxy's clients send a proxy's address back with
	// every update (Disable, Enable).
	started := make([]string, 0, len(proxies))
	for _, p := range proxies {
		started = append(started, p.Listen)
	}
	return web.Serve(ctx, apiAddr, LoopbackOnly(srv.Routes(), started...), 5*time.Second)
}

// LoopbackOnly refuses, with a 400 naming "listen", a request to create or
// move a proxy (POST /proxies, POST /populate, POST|PATCH /proxies/NAME)
// that would listen beyond loopback: the API has no authentication, and a
// proxy on 0.0.0.0 would open a service to the network.
//
// An address in allowed (those the proxies were started on) is accepted too.
func LoopbackOnly(api http.Handler, allowed ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		creates := (r.Method == http.MethodPost || r.Method == http.MethodPatch) &&
			((len(segs) == 1 && (segs[0] == "proxies" || segs[0] == "populate")) || (len(segs) == 2 && segs[0] == "proxies"))
		if !creates {
			api.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			refuse(w, "", "read body: "+err.Error())
			return
		}
		var proxies []struct {
			Listen *string `json:"listen"`
		}
		if segs[0] == "populate" {
			err = json.Unmarshal(body, &proxies)
		} else {
			proxies = append(proxies, struct {
				Listen *string `json:"listen"`
			}{})
			err = json.Unmarshal(body, &proxies[0])
		}
		if err != nil {
			refuse(w, "", "body: "+err.Error())
			return
		}
		for _, p := range proxies {
			if p.Listen == nil && segs[0] == "proxies" && len(segs) == 2 {
				continue // an update that keeps its address
			}
			listen := ""
			if p.Listen != nil {
				listen = *p.Listen
			}
			if !loopback(listen) && !sameAddr(listen, allowed) {
				refuse(w, "listen", fmt.Sprintf("listen %q: a proxy may only listen on loopback (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", listen))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		api.ServeHTTP(w, r)
	})
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false // "" or ":8080" listens on every interface
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameAddr reports whether addr is one of addrs, any unspecified host
// (0.0.0.0, [::], none) standing for every other (toxiproxy answers
// "[::]:18082" for a proxy started on 0.0.0.0:18082).
func sameAddr(addr string, addrs []string) bool {
	norm := func(a string) (string, bool) {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return "", false
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "*"
		}
		return host + ":" + port, true
	}
	n, ok := norm(addr)
	if !ok {
		return false
	}
	for _, a := range addrs {
		if m, ok := norm(a); ok && m == n {
			return true
		}
	}
	return false
}

// refuse answers 400 in toxiproxy's own error shape, plus the field.
func refuse(w http.ResponseWriter, field, msg string) {
	body := map[string]any{"error": msg, "status": http.StatusBadRequest}
	if field != "" {
		body["field"] = field
	}
	web.WriteJSON(w, http.StatusBadRequest, body)
}
