package shipping

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/stampede-dev/stampede/platform/web"
)

// The strict JSON helpers below mirror platform/order/validate.go: every
// error is a 400 *web.Error naming the offending field, before anything is
// written.

// object decodes raw as a JSON object with all the required keys, any of
// the optional ones, and nothing else.
func object(raw json.RawMessage, path string, required, optional []string) (map[string]json.RawMessage, error) {
	name := path
	if name == "" {
		name = "body"
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, invalid(path, "%s must be a JSON object", name)
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
		return nil, invalid(join(path, unknown[0]), "unknown field")
	}
	for _, k := range required {
		if v, ok := m[k]; !ok || isNull(v) {
			return nil, invalid(join(path, k), "required field missing")
		}
	}
	return m, nil
}

// array decodes raw as a JSON array of between min and max elements.
func array(raw json.RawMessage, path string, min, max int) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil || isNull(raw) {
		return nil, invalid(path, "must be an array")
	}
	if len(a) < min {
		return nil, invalid(path, "needs at least %d element(s)", min)
	}
	if len(a) > max {
		return nil, invalid(path, "at most %d elements, got %d", max, len(a))
	}
	return a, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str reads a string field with a length between min and max (optional when min is 0).
func str(o map[string]json.RawMessage, key, prefix string, min, max int) (string, error) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		if min == 0 {
			return "", nil
		}
		return "", invalid(prefix+key, "required field missing")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(prefix+key, "must be a string")
	}
	s = strings.TrimSpace(s)
	if len(s) < min {
		if min == 1 {
			return "", invalid(prefix+key, "must not be empty")
		}
		return "", invalid(prefix+key, "must be at least %d characters", min)
	}
	if len(s) > max {
		return "", invalid(prefix+key, "at most %d characters", max)
	}
	return s, nil
}

// integer reads a whole-number field between min and max; 1.5, 1e3 and "1" are refused.
func integer(o map[string]json.RawMessage, key, prefix string, min, max int64) (int64, error) {
	raw := bytes.TrimSpace(o[key])
	if len(raw) == 0 || isNull(raw) {
		return 0, invalid(prefix+key, "required field missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var n json.Number
	if err := dec.Decode(&n); err != nil || strings.ContainsAny(string(raw), ".eE\"") {
		return 0, invalid(prefix+key, "must be a whole number")
	}
	v, err := n.Int64()
	if err != nil || v < min || v > max {
		return 0, invalid(prefix+key, "must be between %d and %d", min, max)
	}
	return v, nil
}

func invalid(field, format string, args ...any) *web.Error {
	return web.Errorf(http.StatusBadRequest, field, format, args...)
}
