package web

import "testing"

func TestPath(t *testing.T) {
	tests := []struct {
		name, pattern string
		values        []string
		want          string
	}{
		{"ok/no wildcard", "/v1/charges", nil, "/v1/charges"},
		{"ok/one", "/v1/shipments/{id}/deliver", []string{"s-1"}, "/v1/shipments/s-1/deliver"},
		{"ok/two", "/v1/{a}/x/{b}", []string{"1", "2"}, "/v1/1/x/2"},
		{"ok/escaped", "/v1/stock/{sku}", []string{"a/b c"}, "/v1/stock/a%2Fb%20c"},
		{"ok/missing value", "/v1/{a}/x/{b}", []string{"1"}, "/v1/1/x/{b}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Path(tt.pattern, tt.values...); got != tt.want {
				t.Errorf("Path(%q, %q) = %q, want %q", tt.pattern, tt.values, got, tt.want)
			}
		})
	}
}
