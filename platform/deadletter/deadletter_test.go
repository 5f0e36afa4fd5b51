package deadletter

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"nul\x00here", "nul here"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"line\nbreak\ttab", "line break\ttab"},
	} {
		if got := Reason(tc.in); got != tc.want {
			t.Errorf("Reason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := Reason(strings.Repeat("é", 2000))
	if len(long) > MaxReason || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") {
		t.Errorf("Reason(long): %d bytes, valid %v, suffix %q", len(long), utf8.ValidString(long), long[len(long)-6:])
	}
}

func FuzzReason(f *testing.F) {
	f.Add("kafka refused it: MESSAGE_TOO_LARGE")
	f.Add("\x00\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		r := Reason(s)
		if len(r) > MaxReason || !utf8.ValidString(r) || strings.ContainsRune(r, 0) {
			t.Fatalf("Reason(%q) = %q", s, r)
		}
	})
}
