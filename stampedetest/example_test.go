//go:build containers

package stampedetest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stampede-dev/stampede/stampedetest"
)

// readmeExample is the ten-line test of the README's "Testing your code
// against Stampede", kept here so that it compiles (make lint vets it); it
// is not run, TestOrderDelivered does the same and more.
func readmeExample(t *testing.T) {
	st := stampedetest.Start(context.Background(), t) // the whole platform, removed when t ends
	order := `{"userId":"u-1","currency":"USD","items":[{"sku":"SKU-00001","qty":1,"priceCents":1999}],
	  "shippingAddress":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"},
	  "payment":{"method":"card","token":"tok_visa"}}`
	req, _ := http.NewRequest(http.MethodPost, st.OrdersURL+"/v1/orders", strings.NewReader(order))
	req.Header.Set("Idempotency-Key", "checkout-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %v %v", err, resp)
	}
}

var _ = readmeExample
