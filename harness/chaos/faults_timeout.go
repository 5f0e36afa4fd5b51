package chaos

import toxiclient "github.com/Shopify/toxiproxy/v2/client"

// newTimeout is the timeout toxic with timeout 0: connections are accepted
// and never answered. Upstream: requests are swallowed and the connection
// stays open, so callers hang until their own timeout. (Downstream would let
// the service's connection close turn the hang into an EOF.)
func newTimeout(r *faultRun) Fault {
	return &toxicFault{r: r, toxic: "timeout", stream: "upstream", attrs: toxiclient.Attributes{"timeout": 0}}
}
