package web

import (
	"fmt"
	"net/http"

	"github.com/stampede-dev/stampede/platform/config"
)

// Bearer returns a RoundTripper over base (http.DefaultTransport when nil)
// that presents token on every request carrying no Authorization of its own,
// and labels a POST, PUT or PATCH without a Content-Type as JSON (the Guard
// refuses any other, also without a body: a compensation such as POST
// /v1/refunds?orderId= has none). The caller's request is never modified.
func Bearer(token string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &bearer{token: token, base: base}
}

type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	setAuth := r.Header.Get(HeaderAuthorization) == ""
	setType := r.Header.Get("Content-Type") == "" &&
		(r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch)
	if setAuth || setType {
		r = r.Clone(r.Context()) // a RoundTripper must not modify the request
		if setAuth {
			r.Header.Set(HeaderAuthorization, "Bearer "+b.token)
		}
		if setType {
			r.Header.Set("Content-Type", "application/json")
		}
	}
	return b.base.RoundTrip(r)
}

// ServiceClient returns c (a new client when nil) with its transport
// presenting the stack's service token (config.ServiceToken): the one way an
// internal caller (saga activities, harness, demo, bench) reaches a service.
func ServiceClient(c *http.Client) (*http.Client, error) {
	tok, err := config.ServiceToken()
	if err != nil {
		return nil, fmt.Errorf("service client: %w", err)
	}
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	out.Transport = Bearer(tok, out.Transport)
	return out, nil
}
