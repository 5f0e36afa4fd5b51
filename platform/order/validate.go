package order

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/stampede-dev/stampede/platform/event"
	"github.com/stampede-dev/stampede/platform/web"
)

// decodeCreate strictly decodes and validates a POST /v1/orders body. Every
// error is a 400 or 422 *web.Error naming the offending field.
func decodeCreate(body []byte) (CreateRequest, error) {
	var req CreateRequest
	top, err := object(body, "", []string{"userId", "currency", "items", "shippingAddress", "payment"}, nil)
	if err != nil {
		return req, err
	}
	if req.UserID, err = str(top, "userId", "", 1, 128); err != nil {
		return req, err
	}
	if req.Currency, err = str(top, "currency", "", 3, 3); err != nil {
		return req, err
	}
	if !currencies[req.Currency] {
		return req, invalid("currency", "unknown currency %q: want an ISO 4217 code such as USD", req.Currency)
	}
	if req.Items, err = items(top["items"]); err != nil {
		return req, err
	}
	addr, err := object(top["shippingAddress"], "shippingAddress",
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
		if *f.dst, err = str(addr, f.name, "shippingAddress.", f.min, 200); err != nil {
			return req, err
		}
	}
	if a.Country, err = str(addr, "country", "shippingAddress.", 2, 2); err != nil {
		return req, err
	}
	if !countries[a.Country] {
		return req, invalid("shippingAddress.country", "unknown country %q: want an ISO 3166-1 alpha-2 code such as US", a.Country)
	}
	pay, err := object(top["payment"], "payment", []string{"method", "token"}, nil)
	if err != nil {
		return req, err
	}
	if req.Payment.Method, err = str(pay, "method", "payment.", 1, 32); err != nil {
		return req, err
	}
	if req.Payment.Method != "card" {
		return req, invalid("payment.method", "unsupported payment method %q: want card", req.Payment.Method)
	}
	if req.Payment.Token, err = str(pay, "token", "payment.", 1, 255); err != nil {
		return req, err
	}
	return req, nil
}

func items(raw json.RawMessage) ([]event.LineItem, error) {
	var lines []json.RawMessage
	if err := json.Unmarshal(raw, &lines); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, invalid("items", "want an array of order lines")
	}
	switch {
	case len(lines) == 0:
		return nil, invalid("items", "an order needs at least one line")
	case len(lines) > MaxItems:
		return nil, invalid("items", "at most %d lines per order, got %d", MaxItems, len(lines))
	}
	out := make([]event.LineItem, len(lines))
	for i, line := range lines {
		path := fmt.Sprintf("items[%d]", i)
		o, err := object(line, path, []string{"sku", "qty", "priceCents"}, nil)
		if err != nil {
			return nil, err
		}
		if out[i].SKU, err = str(o, "sku", path+".", 1, 64); err != nil {
			return nil, err
		}
		qty, err := integer(o, "qty", path+".")
		if err != nil {
			return nil, err
		}
		if qty < 1 || qty > MaxQty {
			return nil, invalid(path+".qty", "must be between 1 and %d, got %d", MaxQty, qty)
		}
		out[i].Qty = int(qty)
		if out[i].PriceCents, err = integer(o, "priceCents", path+"."); err != nil {
			return nil, err
		}
		if out[i].PriceCents < 0 || out[i].PriceCents > MaxPriceCents {
			return nil, invalid(path+".priceCents", "must be between 0 and %d minor units, got %d", MaxPriceCents, out[i].PriceCents)
		}
	}
	return out, nil
}

// object decodes raw as a JSON object with exactly the required keys and
// any of the optional ones.
func object(raw json.RawMessage, path string, required, optional []string) (map[string]json.RawMessage, error) {
	name := path
	if name == "" {
		name = "body"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, invalid(path, "%s must be a JSON object", name)
	}
	allowed := map[string]bool{}
	for _, k := range append(append([]string{}, required...), optional...) {
		allowed[k] = true
	}
	var unknown []string
	for k := range m {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, invalid(join(path, unknown[0]), "unknown field")
	}
	for _, k := range required {
		if v, ok := m[k]; !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, invalid(join(path, k), "required field missing")
		}
	}
	return m, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str reads a string field with a length between min and max (optional when min is 0).
func str(o map[string]json.RawMessage, key, prefix string, min, max int) (string, error) {
	raw, ok := o[key]
	if !ok {
		if min == 0 {
			return "", nil
		}
		return "", invalid(prefix+key, "required field missing")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(prefix+key, "must be a string")
	}
	if !utf8.Valid(raw) {
		return "", invalid(prefix+key, "must be valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n < min {
		if min == 1 {
			return "", invalid(prefix+key, "must not be empty")
		}
		return "", invalid(prefix+key, "must be %d characters", min)
	}
	if err := web.CheckText(prefix+key, s, max); err != nil {
		return "", err
	}
	return s, nil
}

// integer reads a required whole-number field; 1.5, 1e3 and "1" are refused.
func integer(o map[string]json.RawMessage, key, prefix string) (int64, error) {
	raw := bytes.TrimSpace(o[key])
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var n json.Number
	if err := dec.Decode(&n); err != nil || strings.ContainsAny(string(raw), ".eE\"") {
		return 0, invalid(prefix+key, "must be a whole number")
	}
	v, err := n.Int64()
	if err != nil {
		return 0, invalid(prefix+key, "must be a whole number in range")
	}
	return v, nil
}

func invalid(field, format string, args ...any) *web.Error {
	return web.Errorf(http.StatusBadRequest, field, format, args...)
}
