package chaos

import toxiclient "github.com/Shopify/toxiproxy/v2/client"

// newResetPeer is the reset_peer toxic: connections are reset (RST).
// Downstream: the reset comes when the answer arrives, after the service
// acted, so the caller cannot tell whether it did.
func newResetPeer(r *faultRun) Fault {
	return &toxicFault{r: r, toxic: "reset_peer", stream: "downstream", attrs: toxiclient.Attributes{"timeout": 0}}
}
