package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"
)

// Strict JSON decoding for the services' request bodies (Inventory,
// Payments, Shipping): every error is a 400 *Error naming the offending
// field (items[0].qty style paths), found before anything is written.

// Object decodes raw as a JSON object with all the required keys, any of
// the optional ones, and nothing else.
func Object(raw json.RawMessage, path string, required, optional []string) (map[string]json.RawMessage, error) {
	name := path
	if name == "" {
		name = "body"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, BadRequest(path, "%s must be a JSON object", name)
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
		return nil, BadRequest(joinPath(path, unknown[0]), "unknown field")
	}
	for _, k := range required {
		if v, ok := m[k]; !ok || IsNull(v) {
			return nil, BadRequest(joinPath(path, k), "required field missing")
		}
	}
	return m, nil
}

// Array decodes raw as a JSON array of between min and max elements.
func Array(raw json.RawMessage, path string, min, max int) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil || IsNull(raw) {
		return nil, BadRequest(path, "must be an array")
	}
	if len(a) < min {
		return nil, BadRequest(path, "needs at least %d element(s)", min)
	}
	if len(a) > max {
		return nil, BadRequest(path, "at most %d elements, got %d", max, len(a))
	}
	return a, nil
}

// IsNull reports whether raw is the JSON null.
func IsNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// String reads a string field with a length between min and max (optional when min is 0).
func String(o map[string]json.RawMessage, key, prefix string, min, max int) (string, error) {
	raw, ok := o[key]
	if !ok || IsNull(raw) {
		if min == 0 {
			return "", nil
		}
		return "", BadRequest(prefix+key, "required field missing")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", BadRequest(prefix+key, "must be a string")
	}
	if !utf8.Valid(raw) {
		return "", BadRequest(prefix+key, "must be valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n < min {
		if min == 1 {
			return "", BadRequest(prefix+key, "must not be empty")
		}
		return "", BadRequest(prefix+key, "must be at least %d characters", min)
	}
	if err := CheckText(prefix+key, s, max); err != nil {
		return "", err
	}
	return s, nil
}

// Integer reads a whole-number field between min and max; 1.5, 1e3 and "1" are refused.
func Integer(o map[string]json.RawMessage, key, prefix string, min, max int64) (int64, error) {
	raw := bytes.TrimSpace(o[key])
	if len(raw) == 0 || IsNull(raw) {
		return 0, BadRequest(prefix+key, "required field missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var n json.Number
	if err := dec.Decode(&n); err != nil || strings.ContainsAny(string(raw), ".eE\"") {
		return 0, BadRequest(prefix+key, "must be a whole number")
	}
	v, err := n.Int64()
	if err != nil || v < min || v > max {
		return 0, BadRequest(prefix+key, "must be between %d and %d", min, max)
	}
	return v, nil
}

// BadRequest is a 400 naming the offending field.
func BadRequest(field, format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, field, format, args...)
}

// Query reads the required query parameter name, at most max bytes long.
func Query(r *http.Request, name string, max int) (string, error) {
	v := r.URL.Query().Get(name)
	if v == "" || len(v) > max {
		return "", BadRequest(name, "query parameter %s is required (at most %d characters)", name, max)
	}
	return v, nil
}
