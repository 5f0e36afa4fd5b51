package inventory

import (
	"testing"

	"github.com/stampede-dev/stampede/platform/web/webtest"
)

// FuzzDecodeReserve: any body is a ReserveRequest within the contract's
// bounds, or a 400 naming a field. Never a panic.
func FuzzDecodeReserve(f *testing.F) {
	f.Add([]byte(`{"orderId":"o1","items":[{"sku":"SKU-00001","qty":2}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeReserve(body)
		if err != nil {
			webtest.Refusal(t, err)
			return
		}
		if req.OrderID == "" || len(req.Items) == 0 || len(req.Items) > MaxItems {
			t.Fatalf("accepted %+v", req)
		}
		for _, it := range req.Items {
			if it.SKU == "" || it.Qty < 1 {
				t.Fatalf("accepted line %+v", it)
			}
		}
	})
}
