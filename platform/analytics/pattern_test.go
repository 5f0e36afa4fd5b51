package analytics

import (
	"encoding/json"
	"strings"
	"testing"
)

// ev is an envelope as the router sees it, with fields for every operator.
const ev = `{
  "id": "7f1e3b1c-1b7a-4a53-9a4e-2d1f0c7c1a10",
  "type": "analytics.order_created",
  "version": 1,
  "occurredAt": "2026-11-25T10:00:00Z",
  "correlationId": "o-123",
  "source": "order-service",
  "data": {
    "orderId": "o-123",
    "userId": "u-42",
    "totalCents": 50000,
    "ratio": 0.5,
    "currency": "USD",
    "itemCount": 3,
    "country": "US",
    "reason": null,
    "note": "",
    "gift": true,
    "tags": ["vip", "promo"],
    "scores": [10, 20, 30],
    "empty": [],
    "items": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-2", "qty": 5}],
    "address": {"city": "Springfield", "zip": "12345"}
  }
}`

func TestPatternMatch(t *testing.T) {
	var event map[string]any
	if err := json.Unmarshal([]byte(ev), &event); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		pattern string
		want    bool
	}{
		// exact values, OR, AND, nesting
		{"ok/exact string", `{"type":["analytics.order_created"]}`, true},
		{"no/exact string differs", `{"type":["analytics.order_outcome"]}`, false},
		{"ok/list is OR", `{"type":["x","analytics.order_created"]}`, true},
		{"ok/fields are AND", `{"type":["analytics.order_created"],"source":["order-service"]}`, true},
		{"no/one field of AND fails", `{"type":["analytics.order_created"],"source":["saga"]}`, false},
		{"ok/nested field", `{"data":{"currency":["USD"]}}`, true},
		{"ok/deeply nested", `{"data":{"address":{"city":["Springfield"]}}}`, true},
		{"no/deeply nested differs", `{"data":{"address":{"city":["Shelbyville"]}}}`, false},
		{"ok/exact number", `{"data":{"totalCents":[50000]}}`, true},
		{"ok/exact number numerically (5e4)", `{"data":{"totalCents":[5e4]}}`, true},
		{"no/string does not match number", `{"data":{"totalCents":["50000"]}}`, false},
		{"ok/boolean", `{"data":{"gift":[true]}}`, true},
		{"no/boolean differs", `{"data":{"gift":[false]}}`, false},
		{"ok/detail-type and detail aliases", `{"detail-type":["analytics.order_created"],"detail":{"country":["US"]}}`, true},
		// missing vs null vs empty string
		{"ok/null matches null", `{"data":{"reason":[null]}}`, true},
		{"no/null does not match missing", `{"data":{"missing":[null]}}`, false},
		{"no/empty string does not match null", `{"data":{"reason":[""]}}`, false},
		{"ok/empty string matches empty string", `{"data":{"note":[""]}}`, true},
		{"no/null does not match empty string", `{"data":{"note":[null]}}`, false},
		{"no/exact value on missing field", `{"data":{"missing":["x"]}}`, false},
		{"no/nested object missing", `{"nope":{"a":["x"]}}`, false},
		// exists
		{"ok/exists true on present", `{"data":{"country":[{"exists":true}]}}`, true},
		{"no/exists true on missing", `{"data":{"missing":[{"exists":true}]}}`, false},
		{"ok/exists false on missing", `{"data":{"missing":[{"exists":false}]}}`, true},
		{"no/exists false on present", `{"data":{"country":[{"exists":false}]}}`, false},
		{"ok/exists true on null", `{"data":{"reason":[{"exists":true}]}}`, true},
		{"no/exists false on null", `{"data":{"reason":[{"exists":false}]}}`, false},
		{"ok/exists false on empty array", `{"data":{"empty":[{"exists":false}]}}`, true},
		{"ok/exists false below a missing object", `{"nope":{"a":[{"exists":false}]}}`, true},
		// prefix / suffix / equals-ignore-case
		{"ok/prefix", `{"type":[{"prefix":"analytics."}]}`, true},
		{"no/prefix", `{"type":[{"prefix":"order."}]}`, false},
		{"no/prefix is case-sensitive", `{"type":[{"prefix":"Analytics."}]}`, false},
		{"ok/prefix ignoring case", `{"type":[{"prefix":{"equals-ignore-case":"ANALYTICS."}}]}`, true},
		{"no/prefix on a number", `{"data":{"totalCents":[{"prefix":"5"}]}}`, false},
		{"ok/suffix", `{"type":[{"suffix":"_created"}]}`, true},
		{"no/suffix", `{"type":[{"suffix":"_outcome"}]}`, false},
		{"ok/suffix ignoring case", `{"data":{"userId":[{"suffix":{"equals-ignore-case":"-42"}}]}}`, true},
		{"ok/equals-ignore-case", `{"data":{"currency":[{"equals-ignore-case":"usd"}]}}`, true},
		{"no/equals-ignore-case differs", `{"data":{"currency":[{"equals-ignore-case":"eur"}]}}`, false},
		// wildcard
		{"ok/wildcard middle", `{"type":[{"wildcard":"analytics.*_created"}]}`, true},
		{"ok/wildcard two stars", `{"data":{"userId":[{"wildcard":"*-*"}]}}`, true},
		{"no/wildcard", `{"type":[{"wildcard":"order.*"}]}`, false},
		{"no/wildcard without star is exact", `{"type":[{"wildcard":"analytics"}]}`, false},
		{"no/wildcard escaped star is literal", `{"type":[{"wildcard":"analytics\\*"}]}`, false},
		// anything-but
		{"ok/anything-but value", `{"data":{"country":[{"anything-but":"DE"}]}}`, true},
		{"no/anything-but same value", `{"data":{"country":[{"anything-but":"US"}]}}`, false},
		{"no/anything-but list containing value", `{"data":{"country":[{"anything-but":["DE","US"]}]}}`, false},
		{"ok/anything-but list without value", `{"data":{"country":[{"anything-but":["DE","FR"]}]}}`, true},
		{"ok/anything-but number", `{"data":{"itemCount":[{"anything-but":[1,2]}]}}`, true},
		{"no/anything-but number listed", `{"data":{"itemCount":[{"anything-but":3}]}}`, false},
		{"no/anything-but prefix that matches", `{"type":[{"anything-but":{"prefix":"analytics."}}]}`, false},
		{"ok/anything-but prefix that does not match", `{"type":[{"anything-but":{"prefix":"order."}}]}`, true},
		{"no/anything-but suffix that matches", `{"type":[{"anything-but":{"suffix":"created"}}]}`, false},
		{"no/anything-but ignoring case", `{"data":{"currency":[{"anything-but":{"equals-ignore-case":["usd"]}}]}}`, false},
		{"no/anything-but on missing field", `{"data":{"missing":[{"anything-but":"x"}]}}`, false},
		{"no/anything-but on null", `{"data":{"reason":[{"anything-but":"x"}]}}`, false},
		{"ok/anything-but on array: one element differs", `{"data":{"tags":[{"anything-but":"vip"}]}}`, true},
		// numeric
		{"ok/numeric > below", `{"data":{"totalCents":[{"numeric":[">",49999]}]}}`, true},
		{"no/numeric > bound is exclusive", `{"data":{"totalCents":[{"numeric":[">",50000]}]}}`, false},
		{"ok/numeric >= bound is inclusive", `{"data":{"totalCents":[{"numeric":[">=",50000]}]}}`, true},
		{"no/numeric < bound is exclusive", `{"data":{"totalCents":[{"numeric":["<",50000]}]}}`, false},
		{"ok/numeric <= bound is inclusive", `{"data":{"totalCents":[{"numeric":["<=",50000]}]}}`, true},
		{"ok/numeric =", `{"data":{"totalCents":[{"numeric":["=",50000]}]}}`, true},
		{"no/numeric = differs", `{"data":{"totalCents":[{"numeric":["=",50001]}]}}`, false},
		{"ok/numeric range", `{"data":{"ratio":[{"numeric":[">",0,"<=",0.5]}]}}`, true},
		{"no/numeric range upper exclusive", `{"data":{"ratio":[{"numeric":[">",0,"<",0.5]}]}}`, false},
		{"no/numeric on a string", `{"data":{"currency":[{"numeric":[">",0]}]}}`, false},
		{"no/numeric on missing", `{"data":{"missing":[{"numeric":[">",0]}]}}`, false},
		{"ok/numeric on array: any element", `{"data":{"scores":[{"numeric":[">",25]}]}}`, true},
		{"no/numeric on array: no element", `{"data":{"scores":[{"numeric":[">",30]}]}}`, false},
		// arrays in the event, OR across operators
		{"ok/array any element equals", `{"data":{"tags":["promo"]}}`, true},
		{"no/array no element equals", `{"data":{"tags":["new"]}}`, false},
		{"ok/array of objects: one element matches", `{"data":{"items":{"sku":["SKU-2"],"qty":[5]}}}`, true},
		{"no/array of objects: fields from different elements", `{"data":{"items":{"sku":["SKU-1"],"qty":[5]}}}`, false},
		{"ok/mixed operators are OR", `{"data":{"country":["DE",{"prefix":"U"}]}}`, true},
		{"no/empty array matches no value", `{"data":{"empty":["x"]}}`, false},
		// $or
		{"ok/$or one branch", `{"$or":[{"type":["nope"]},{"data":{"country":["US"]}}]}`, true},
		{"no/$or no branch", `{"$or":[{"type":["nope"]},{"data":{"country":["DE"]}}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.name, "ok/") != tt.want {
				t.Fatalf("case name prefix disagrees with want=%v", tt.want)
			}
			p, err := ParsePattern([]byte(tt.pattern))
			if err != nil {
				t.Fatalf("ParsePattern(%s): %v", tt.pattern, err)
			}
			if got := p.Match(event); got != tt.want {
				t.Fatalf("Match(%s) = %v, want %v", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct {
		name, pattern, want string
	}{
		{"err/not an object", `["x"]`, "pattern: must be an object"},
		{"err/empty", `{}`, "pattern: is empty"},
		{"err/leaf not a list", `{"type":"x"}`, "pattern.type: must be a list"},
		{"err/empty list", `{"type":[]}`, "pattern.type: is an empty list"},
		{"err/numeric odd", `{"data":{"totalCents":[{"numeric":[">"]}]}}`, "pattern.data.totalCents: numeric wants pairs of operator and number"},
		{"err/numeric string bound", `{"data":{"totalCents":[{"numeric":[">","5"]}]}}`, "pattern.data.totalCents: numeric wants pairs"},
		{"err/numeric bad op", `{"data":{"t":[{"numeric":["!=",5]}]}}`, `pattern.data.t: numeric operator "!="`},
		{"err/numeric two lower bounds", `{"data":{"t":[{"numeric":[">",5,">=",6]}]}}`, "pattern.data.t: numeric wants one lower bound"},
		{"err/numeric out of range", `{"data":{"t":[{"numeric":[">",6e9]}]}}`, "outside -5e9..5e9"},
		{"err/unknown operator", `{"data":{"t":[{"cidr":"10.0.0.0/8"}]}}`, `pattern.data.t: unknown operator "cidr"`},
		{"err/wildcard double star", `{"data":{"t":[{"wildcard":"a**"}]}}`, `pattern.data.t: wildcard "a**" has consecutive stars`},
		{"err/exists not bool", `{"data":{"t":[{"exists":"yes"}]}}`, "pattern.data.t: exists wants true or false"},
		{"err/prefix not string", `{"type":[{"prefix":5}]}`, "pattern.type: prefix wants a string"},
		{"err/anything-but empty", `{"type":[{"anything-but":[]}]}`, "anything-but wants at least one value"},
		{"err/anything-but bad op", `{"type":[{"anything-but":{"wildcard":"x"}}]}`, `anything-but operator "wildcard"`},
		{"err/two operators in one object", `{"type":[{"prefix":"a","suffix":"b"}]}`, "pattern.type[0]: an operator object has exactly one key"},
		{"err/$or needs two", `{"$or":[{"type":["a"]}]}`, "pattern.$or: wants a list of at least two patterns"},
		{"err/alias clash", `{"detail":{"a":["b"]},"data":{"a":["b"]}}`, `pattern.detail: is an alias of "data"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePattern([]byte(tt.pattern))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParsePattern(%s) error = %v, want it to contain %q", tt.pattern, err, tt.want)
			}
		})
	}
}
