package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"
)

// FuzzStrictDecoder reads any body as a service does (ReadJSONBody) and
// decodes it with the strict decoder against a small schema with every kind
// of field. The property: no panic; a refusal is a 4xx *Error naming a
// field; what is accepted is within the schema's bounds.
func FuzzStrictDecoder(f *testing.F) {
	f.Add([]byte(`{"name":"Ada","n":7,"list":[{"k":"x"}],"sub":{"k":"y"}}`))
	f.Add([]byte(`{"name":"Ada","n":7,"name":"Eve"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		err := decodeSample(r)
		if err == nil {
			return
		}
		var we *Error
		if !errors.As(err, &we) || we.Status < 400 || we.Status >= 500 || we.Message == "" || we.Field == "" {
			t.Fatalf("refused %q with %#v, want a 4xx naming the field", body, err)
		}
		if !utf8.ValidString(we.Field) || utf8.RuneCountInString(we.Field) > 200 {
			t.Fatalf("field %q: want short printable text", we.Field)
		}
	})
}

func decodeSample(r *http.Request) error {
	raw, err := ReadJSONBody(r, 4<<10)
	if err != nil {
		return err
	}
	top, err := Object(raw, "", []string{"name", "n"}, []string{"list", "sub"})
	if err != nil {
		return err
	}
	name, err := String(top, "name", "", 1, 10)
	if err != nil {
		return err
	}
	if n := utf8.RuneCountInString(name); n < 1 || n > 10 || textProblem(name) != "" {
		return fmt.Errorf("accepted name %q", name) // not a *Error: fails the property
	}
	n, err := Integer(top, "n", "", 1, 100)
	if err != nil {
		return err
	}
	if n < 1 || n > 100 {
		return fmt.Errorf("accepted n %d", n)
	}
	if l, ok := top["list"]; ok && !IsNull(l) {
		items, err := Array(l, "list", 0, 3)
		if err != nil {
			return err
		}
		for i, it := range items {
			o, err := Object(it, fmt.Sprintf("list[%d]", i), []string{"k"}, nil)
			if err != nil {
				return err
			}
			if _, err := String(o, "k", fmt.Sprintf("list[%d].", i), 1, 5); err != nil {
				return err
			}
		}
	}
	if s, ok := top["sub"]; ok && !IsNull(s) {
		o, err := Object(s, "sub", nil, []string{"k"})
		if err != nil {
			return err
		}
		if _, err := String(o, "k", "sub.", 0, 5); err != nil {
			return err
		}
	}
	return nil
}
