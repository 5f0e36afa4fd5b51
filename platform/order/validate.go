package order

import (
	"fmt"
	"net/http"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/web"
)

// decodeCreate strictly decodes and validates a POST /v1/orders body with
// platform/web's strict decoder. Every error is a 400 *web.Error naming the
// offending field (items[0].qty style paths), but for a well-formed order
// whose total Payments would refuse: 422 naming items.
func decodeCreate(body []byte) (CreateRequest, error) {
	var req CreateRequest
	top, err := web.Object(body, "", []string{"userId", "currency", "items", "shippingAddress", "payment"}, nil)
	if err != nil {
		return req, err
	}
	if req.UserID, err = web.String(top, "userId", "", 1, 128); err != nil {
		return req, err
	}
	if req.Currency, err = web.String(top, "currency", "", 3, 3); err != nil {
		return req, err
	}
	if !currencies[req.Currency] {
		return req, web.BadRequest("currency", "unknown currency %q: want an ISO 4217 code such as USD", req.Currency)
	}
	if req.Items, err = lineItems(top["items"]); err != nil {
		return req, err
	}
	addr, err := web.Object(top["shippingAddress"], "shippingAddress",
		[]string{"name", "line1", "city", "postalCode", "country"}, []string{"line2", "region"})
	if err != nil {
		return req, err
	}
	a := &req.ShippingAddress
	for _, f := range []struct {
		name string
		dst  *string
		min  int
	}{{"name", &a.Name, 1}, {"line1", &a.Line1, 1}, {"line2", &a.Line2, 0}, {"city", &a.City, 1}, {"region", &a.Region, 0}, {"postalCode", &a.PostalCode, 1}} {
		if *f.dst, err = web.String(addr, f.name, "shippingAddress.", f.min, 200); err != nil {
			return req, err
		}
	}
	if a.Country, err = web.String(addr, "country", "shippingAddress.", 2, 2); err != nil {
		return req, err
	}
	if !countries[a.Country] {
		return req, web.BadRequest("shippingAddress.country", "unknown country %q: want an ISO 3166-1 alpha-2 code such as US", a.Country)
	}
	pay, err := web.Object(top["payment"], "payment", []string{"method", "token"}, nil)
	if err != nil {
		return req, err
	}
	if req.Payment.Method, err = web.String(pay, "method", "payment.", 1, 32); err != nil {
		return req, err
	}
	if req.Payment.Method != "card" {
		return req, web.BadRequest("payment.method", "unsupported payment method %q: want card", req.Payment.Method)
	}
	if req.Payment.Token, err = web.String(pay, "token", "payment.", 1, 255); err != nil {
		return req, err
	}
	if total := req.Total(); total > MaxTotalCents {
		return req, &web.Error{Status: http.StatusUnprocessableEntity, Field: "items",
			Message: fmt.Sprintf("order total %d exceeds %d, the most Payments charges at once", total, int64(MaxTotalCents)),
			Extra:   map[string]any{"totalCents": total, "maxTotalCents": int64(MaxTotalCents)}}
	}
	return req, nil
}

// lineItems decodes the order lines: 1 to MaxItems, each a SKU, a quantity
// of 1 to MaxQty and a unit price of 0 to MaxPriceCents minor units.
func lineItems(raw []byte) ([]event.LineItem, error) {
	lines, err := web.Array(raw, "items", 1, MaxItems)
	if err != nil {
		return nil, err
	}
	out := make([]event.LineItem, len(lines))
	for i, line := range lines {
		path := fmt.Sprintf("items[%d]", i)
		o, err := web.Object(line, path, []string{"sku", "qty", "priceCents"}, nil)
		if err != nil {
			return nil, err
		}
		if out[i].SKU, err = web.String(o, "sku", path+".", 1, 64); err != nil {
			return nil, err
		}
		qty, err := web.Integer(o, "qty", path+".", 1, MaxQty)
		if err != nil {
			return nil, err
		}
		out[i].Qty = int(qty)
		if out[i].PriceCents, err = web.Integer(o, "priceCents", path+".", 0, MaxPriceCents); err != nil {
			return nil, err
		}
	}
	return out, nil
}
