package analytics

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzPattern compiles any pattern and matches it against any event. The
// property: no panic; a refused pattern is a *FieldError naming where
// (pattern.data.totalCents style); a compiled one matches or not, and
// matches the same way twice.
func FuzzPattern(f *testing.F) {
	f.Add([]byte(`{"type":["analytics.order_created"],"data":{"totalCents":[{"numeric":[">",50000]}]}}`),
		[]byte(`{"type":"analytics.order_created","data":{"totalCents":60000}}`))
	f.Add([]byte(`{"$or":[{"source":[{"prefix":"order"}]},{"data":{"status":[{"anything-but":["failed"]}]}}]}`),
		[]byte(`{"source":"order-service","data":{"status":"failed"}}`))
	f.Add([]byte(`{"data":{"sku":[{"wildcard":"SKU-*-\\*"}],"n":[{"exists":false}]}}`), []byte(`{"data":{"sku":["SKU-1-*",null]}}`))
	f.Fuzz(func(t *testing.T, pattern, ev []byte) {
		p, err := ParsePattern(pattern)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path == "" || fe.Msg == "" {
				t.Fatalf("ParsePattern(%q) = %#v, want a *FieldError naming where", pattern, err)
			}
			return
		}
		var doc map[string]any
		if json.Unmarshal(ev, &doc) != nil {
			return
		}
		if p.Match(doc) != p.Match(doc) {
			t.Fatalf("pattern %q matches %q one way, then the other", pattern, ev)
		}
	})
}
