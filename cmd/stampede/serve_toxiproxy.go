package main

import (
	"context"

	"github.com/stampede-dev/stampede/harness/toxiproxy"
	"github.com/stampede-dev/stampede/platform/config"
)

func serveToxiproxy(ctx context.Context, args []string) error {
	fs := config.NewFlagSet("stampede serve toxiproxy", `The toxiproxy server, embedded, with its API on 127.0.0.1:8474 and the proxy
"payments" (127.0.0.1:18082 -> Payments on 8082). Workers reach Payments through it
in every mode, so faults injected by the chaos harness hit the real call path.`)
	var api, listen, upstream string
	fs.StringVar(&api, "api", "", config.Addr(config.Toxiproxy), "toxiproxy API address (port: STAMPEDE_TOXIPROXY_PORT)")
	fs.StringVar(&listen, "payments-listen", "", config.Addr(config.PaymentsProxy), "where the payments proxy listens (port: STAMPEDE_PAYMENTS_PROXY_PORT)")
	fs.StringVar(&upstream, "payments-upstream", "", config.Addr(config.Payments), "the Payments service (port: STAMPEDE_PAYMENTS_PORT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return toxiproxy.Serve(ctx, api, []toxiproxy.Proxy{{Name: "payments", Listen: listen, Upstream: upstream}})
}
