package web

import (
	"bytes"
	"encoding/json"
	"fmt"
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
//
// A key given twice is refused too (naming it): a decoder that keeps the
// last one would store something else than what a proxy, a log or a
// signature check in front of it read.
func Object(raw json.RawMessage, path string, required, optional []string) (map[string]json.RawMessage, error) {
	name := path
	if name == "" {
		name = FieldBody
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, BadRequest(name, "%s must be a JSON object", name)
	}
	if dup, ok := duplicateKey(raw, path, false); ok {
		return nil, BadRequest(dup, "duplicate key")
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

// joinPath names key of the object at path. The key is the client's, and is
// echoed in the answer: fieldName makes it short and printable.
func joinPath(path, key string) string {
	key = fieldName(key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// maxFieldName is the most characters of a client's key an error echoes.
const maxFieldName = 64

// fieldName is key as an error names it: valid UTF-8, control characters
// as U+FFFD, at most maxFieldName characters (cut with an ellipsis).
func fieldName(key string) string {
	if key == "" {
		return `""` // the empty key, named
	}
	if textProblem(key) == "" && utf8.RuneCountInString(key) <= maxFieldName {
		return key
	}
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(key, "\uFFFD") {
		if n == maxFieldName {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// CheckDuplicateKeys refuses, with a 400 naming it (items[0].sku style), the
// first key given twice in one object anywhere in body, a valid JSON value.
func CheckDuplicateKeys(body []byte) error {
	if dup, ok := duplicateKey(body, "", true); ok {
		return BadRequest(dup, "duplicate key")
	}
	return nil
}

// duplicateKey finds the first key given twice in one object of raw (a
// valid JSON value at path): in its top-level object only, or at any depth.
func duplicateKey(raw []byte, path string, deep bool) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dup, _ := walkDuplicates(dec, path, deep)
	return dup, dup != ""
}

// walkDuplicates reads one value from dec and returns the path of the first
// duplicate key in it ("" when none). Keys compare as decoded, so "a" and
// "\u0061" are the same key, as they are to any decoder.
func walkDuplicates(dec *json.Decoder, path string, deep bool) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", err
			}
			key, _ := kt.(string)
			p := joinPath(path, key)
			if seen[key] {
				return p, nil
			}
			seen[key] = true
			if deep {
				if dup, err := walkDuplicates(dec, p, deep); dup != "" || err != nil {
					return dup, err
				}
			} else if err := dec.Decode(new(json.RawMessage)); err != nil {
				return "", err
			}
		}
		_, err = dec.Token() // }
		return "", err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if !deep {
				if err := dec.Decode(new(json.RawMessage)); err != nil {
					return "", err
				}
				continue
			}
			if dup, err := walkDuplicates(dec, fmt.Sprintf("%s[%d]", path, i), deep); dup != "" || err != nil {
				return dup, err
			}
		}
		_, err = dec.Token() // ]
		return "", err
	}
	return "", nil
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

// Query reads the required query parameter name: text (CheckText) of 1 to
// max characters. It is stored and forwarded (an order id), so NUL or bytes
// that are not UTF-8 are a 400 naming it, not a store's refusal.
func Query(r *http.Request, name string, max int) (string, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return "", BadRequest(name, "query parameter %s is required (at most %d characters)", name, max)
	}
	if err := CheckText(name, v, max); err != nil {
		return "", err
	}
	return v, nil
}

// PathValue reads the path wildcard name: text (CheckText) of 1 to max
// characters, or a 400 naming it.
func PathValue(r *http.Request, name string, max int) (string, error) {
	v := r.PathValue(name)
	if v == "" {
		return "", BadRequest(name, "%s is required", name)
	}
	if err := CheckText(name, v, max); err != nil {
		return "", err
	}
	return v, nil
}
