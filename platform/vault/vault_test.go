package vault

import "testing"

func TestValidRef(t *testing.T) {
	for _, tt := range []struct {
		ref  string
		want bool
	}{
		{"pref_0123456789abcdef0123456789abcdef", true},
		{"pref_0123456789ABCDEF0123456789abcdef", false},
		{"pref_0123456789abcdef0123456789abcde", false},
		{"tok_visa", false},
		{"", false},
		{"pref_0123456789abcdef0123456789abcdeg", false},
	} {
		if got := ValidRef(tt.ref); got != tt.want {
			t.Errorf("ValidRef(%q) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}
