package web

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name, s string
		max     int
		want    string // "" = accepted
	}{
		{"ok/ascii", "Ada Lovelace", 50, ""},
		{"ok/accents count as characters", strings.Repeat("é", 50), 50, ""},
		{"ok/no bound", strings.Repeat("x", 5000), 0, ""},
		{"err/too long", strings.Repeat("é", 51), 50, "at most 50 characters"},
		{"err/NUL", "a\x00b", 0, "must not contain control characters"},
		{"err/newline", "a\nb", 0, "must not contain control characters"},
		{"err/DEL", "a\x7fb", 0, "must not contain control characters"},
		{"err/C1 control", "a\u0085b", 0, "must not contain control characters"},
		{"err/not UTF-8", "a\xffb", 0, "must be valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckText("f", tt.s, tt.max)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var we *Error
			if !errors.As(err, &we) || we.Status != 400 || we.Field != "f" || we.Message != tt.want {
				t.Fatalf("err = %#v, want 400 on field f: %q", err, tt.want)
			}
		})
	}
}
