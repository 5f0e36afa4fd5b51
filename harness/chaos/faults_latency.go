package chaos

import toxiclient "github.com/Shopify/toxiproxy/v2/client"

// newLatency is the latency toxic on the answers: each is delayed by
// Spec.Latency, give or take Spec.Jitter.
func newLatency(r *faultRun) Fault {
	return &toxicFault{r: r, toxic: "latency", stream: "downstream", attrs: toxiclient.Attributes{
		"latency": r.Latency.Milliseconds(), "jitter": r.Jitter.Milliseconds()}}
}
