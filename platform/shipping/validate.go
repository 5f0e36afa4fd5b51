package shipping

import (
	"fmt"
	"net/http"

	"github.com/stampede-dev/stampede/platform/idempotency"
	"github.com/stampede-dev/stampede/platform/web"
)

// decodeCreate strictly decodes and validates a POST /v1/shipments body.
// Whether the address can be delivered is a business answer (422
// undeliverable, replayed), not a validation error.
func decodeCreate(body []byte) (CreateRequest, error) {
	var req CreateRequest
	top, err := web.Object(body, "", []string{"orderId", "items", "address"}, nil)
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
	req.Items = make([]Item, len(lines))
	for i, line := range lines {
		path := fmt.Sprintf("items[%d]", i)
		o, err := web.Object(line, path, []string{"sku", "qty"}, []string{"warehouseId", "priceCents"})
		if err != nil {
			return req, err
		}
		it := &req.Items[i]
		if it.SKU, err = web.String(o, "sku", path+".", 1, 64); err != nil {
			return req, err
		}
		qty, err := web.Integer(o, "qty", path+".", 1, MaxQty)
		if err != nil {
			return req, err
		}
		it.Qty = int(qty)
		if it.WarehouseID, err = web.String(o, "warehouseId", path+".", 0, 64); err != nil {
			return req, err
		}
		if _, ok := o["priceCents"]; ok && !web.IsNull(o["priceCents"]) {
			if it.PriceCents, err = web.Integer(o, "priceCents", path+".", 0, 100_000_000); err != nil {
				return req, err
			}
		}
	}
	addr, err := web.Object(top["address"], "address", []string{"name", "line1", "city", "postalCode", "country"}, []string{"line2", "region"})
	if err != nil {
		return req, err
	}
	a := &req.Address
	for _, f := range []struct {
		name string
		dst  *string
		min  int
	}{{"name", &a.Name, 1}, {"line1", &a.Line1, 1}, {"line2", &a.Line2, 0}, {"city", &a.City, 1}, {"region", &a.Region, 0}, {"postalCode", &a.PostalCode, 1}} {
		if *f.dst, err = web.String(addr, f.name, "address.", f.min, 200); err != nil {
			return req, err
		}
	}
	if a.Country, err = web.String(addr, "country", "address.", 2, 2); err != nil {
		return req, err
	}
	for _, c := range a.Country {
		if c < 'A' || c > 'Z' {
			return req, web.BadRequest("address.country", "want an upper-case ISO 3166-1 alpha-2 code such as US, got %q", a.Country)
		}
	}
	return req, nil
}

// undeliverable names the address field that cannot be delivered to, or "".
func undeliverable(a Address) string {
	switch {
	case a.Country == UndeliverableCountry:
		return "address.country"
	case a.PostalCode == UndeliverablePostalCode:
		return "address.postalCode"
	}
	return ""
}

// readCreate reads a POST /v1/shipments: its body, then the key it is
// deduplicated on, the Idempotency-Key or the order without one.
func readCreate(r *http.Request) (req CreateRequest, orderID, key string, err error) {
	if req, err = web.DecodeBody(r, MaxBodyBytes, decodeCreate); err != nil {
		return req, "", "", err
	}
	key, err = idempotency.KeyOf(r, MaxKeyLen, req.OrderID)
	return req, req.OrderID, key, err
}
