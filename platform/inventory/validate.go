package inventory

import (
	"fmt"
	"net/http"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/web"
)

// decodeReserve strictly decodes and validates a POST /v1/reservations body
// and merges lines of the same SKU (in the order they first appear).
func decodeReserve(body []byte) (ReserveRequest, error) {
	var req ReserveRequest
	top, err := web.Object(body, "", []string{"orderId", "items"}, nil)
	if err != nil {
		return req, err
	}
	if req.OrderID, err = web.String(top, "orderId", "", 1, 128); err != nil {
		return req, err
	}
	lines, err := web.Array(top["items"], "items", 1, MaxItems)
	if err != nil {
		return req, err
	}
	at := map[string]int{}
	for i, line := range lines {
		path := fmt.Sprintf("items[%d]", i)
		o, err := web.Object(line, path, []string{"sku", "qty"}, nil)
		if err != nil {
			return req, err
		}
		sku, err := web.String(o, "sku", path+".", 1, 64)
		if err != nil {
			return req, err
		}
		qty, err := web.Integer(o, "qty", path+".", 1, MaxQty)
		if err != nil {
			return req, err
		}
		if j, ok := at[sku]; ok {
			req.Items[j].Qty += int(qty)
			continue
		}
		at[sku] = len(req.Items)
		req.Items = append(req.Items, Item{SKU: sku, Qty: int(qty)})
	}
	return req, nil
}

// readReserve reads a POST /v1/reservations: its body, then the key it is
// deduplicated on, the Idempotency-Key or the order without one.
func readReserve(r *http.Request) (req ReserveRequest, orderID, key string, err error) {
	if req, err = web.DecodeBody(r, MaxBodyBytes, decodeReserve); err != nil {
		return req, "", "", err
	}
	key, err = idempotency.KeyOf(r, MaxKeyLen, req.OrderID)
	return req, req.OrderID, key, err
}
