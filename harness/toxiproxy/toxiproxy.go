// Package toxiproxy runs the toxiproxy server embedded in a Stampede process,
// with the proxies the platform routes through it (Payments first of all), so
// the demo path and the chaos path are the same path.
//
// It must never add toxics by itself: faults are the chaos harness's call.
package toxiproxy

import (
	"context"
	"fmt"
	"os"
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
	return web.Serve(ctx, apiAddr, srv.Routes(), 5*time.Second)
}
