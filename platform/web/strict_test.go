package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

// wantField checks that err is a 400 naming field (ok when field is "").
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var we *Error
	if !errors.As(err, &we) || we.Status != http.StatusBadRequest || we.Field != field || we.Message == "" {
		t.Fatalf("err = %#v, want a 400 naming %q", err, field)
	}
}

func TestObject(t *testing.T) {
	tests := []struct {
		name, raw, path, field string
	}{
		{"ok/required and optional", `{"a":1,"b":"x"}`, "", ""},
		{"ok/optional left out", `{"a":1}`, "", ""},
		{"err/not JSON", `{"a":`, "x", "x"},
		{"err/array", `[1]`, "x", "x"},
		{"err/null", `null`, "x", "x"},
		{"err/unknown field, first in order", `{"a":1,"z":1,"c":2}`, "x", "x.c"},
		{"err/unknown field at the top", `{"a":1,"c":2}`, "", "c"},
		{"err/required missing", `{"b":"x"}`, "x", "x.a"},
		{"err/required null", `{"a":null}`, "", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Object(json.RawMessage(tt.raw), tt.path, []string{"a"}, []string{"b"})
			wantField(t, err, tt.field)
		})
	}
}

func TestArray(t *testing.T) {
	tests := []struct {
		name, raw, field string
	}{
		{"ok/one", `[1]`, ""},
		{"ok/at the limit", `[1,2,3]`, ""},
		{"err/empty", `[]`, "items"},
		{"err/over the limit", `[1,2,3,4]`, "items"},
		{"err/null", `null`, "items"},
		{"err/not an array", `"x"`, "items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Array(json.RawMessage(tt.raw), "items", 1, 3)
			wantField(t, err, tt.field)
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name     string
		raw      string // the value of key "s"; "" leaves the key out
		min, max int
		want     string
		field    string
	}{
		{"ok/trimmed", `"  Ada "`, 1, 10, "Ada", ""},
		{"ok/optional missing", ``, 0, 10, "", ""},
		{"ok/optional null", `null`, 0, 10, "", ""},
		{"ok/exact length", `"USD"`, 3, 3, "USD", ""},
		{"err/required missing", ``, 1, 10, "", "p.s"},
		{"err/not a string", `7`, 1, 10, "", "p.s"},
		{"err/blank", `" "`, 1, 10, "", "p.s"},
		{"err/too short", `"US"`, 3, 3, "", "p.s"},
		{"err/too long", `"USDX"`, 3, 3, "", "p.s"},
		{"err/NUL", `"a\u0000b"`, 1, 10, "", "p.s"},
		{"err/newline", `"a\nb"`, 1, 10, "", "p.s"},
		{"err/not UTF-8", "\"a\xffb\"", 1, 10, "", "p.s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := map[string]json.RawMessage{}
			if tt.raw != "" {
				o["s"] = json.RawMessage(tt.raw)
			}
			got, err := String(o, "s", "p.", tt.min, tt.max)
			wantField(t, err, tt.field)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInteger(t *testing.T) {
	tests := []struct {
		name  string
		raw   string
		want  int64
		field string
	}{
		{"ok/whole", `2`, 2, ""},
		{"ok/lowest", `1`, 1, ""},
		{"ok/highest", `1000`, 1000, ""},
		{"err/missing", ``, 0, "p.n"},
		{"err/null", `null`, 0, "p.n"},
		{"err/zero", `0`, 0, "p.n"},
		{"err/negative", `-1`, 0, "p.n"},
		{"err/over", `1001`, 0, "p.n"},
		{"err/fractional", `1.5`, 0, "p.n"},
		{"err/exponent", `2e3`, 0, "p.n"},
		{"err/quoted", `"2"`, 0, "p.n"},
		{"err/beyond int64", `99999999999999999999`, 0, "p.n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := map[string]json.RawMessage{}
			if tt.raw != "" {
				o["n"] = json.RawMessage(tt.raw)
			}
			got, err := Integer(o, "n", "p.", 1, 1000)
			wantField(t, err, tt.field)
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}
