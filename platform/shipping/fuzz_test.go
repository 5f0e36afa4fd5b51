package shipping

import (
	"testing"

	"github.com/stampede-dev/stampede/platform/web/webtest"
)

// FuzzDecodeCreate: any body is a CreateRequest within the contract's
// bounds, or a 400 naming a field. Never a panic.
func FuzzDecodeCreate(f *testing.F) {
	f.Add([]byte(`{"orderId":"o1","items":[{"sku":"A","qty":1}],"address":{"name":"Ada","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeCreate(body)
		if err != nil {
			webtest.Refusal(t, err)
			return
		}
		if req.OrderID == "" || len(req.Items) == 0 || len(req.Items) > MaxItems || len(req.Address.Country) != 2 {
			t.Fatalf("accepted %+v", req)
		}
	})
}
