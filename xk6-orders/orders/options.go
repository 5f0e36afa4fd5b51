package orders

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grafana/sobek"
)

// options reads a script's options object and names the offending option in
// every error, so a typo in a script fails at the line that made it.
type options struct {
	where  string // "orders.Client", "orders.generate"...
	values map[string]any
}

// newOptions exports v as an options object, refusing keys outside known.
// A missing or undefined v is an empty object.
func newOptions(where string, v sobek.Value, known ...string) (*options, error) {
	o := &options{where: where, values: map[string]any{}}
	if v == nil || sobek.IsUndefined(v) || sobek.IsNull(v) {
		return o, nil
	}
	obj, ok := v.Export().(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: options must be an object, got %s", where, describe(v.Export()))
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%s: unknown option %q (known options: %s)", where, unknown[0], strings.Join(known, ", "))
	}
	o.values = obj
	return o, nil
}

func (o *options) has(name string) bool {
	v, ok := o.values[name]
	return ok && v != nil
}

func (o *options) errorf(name, format string, args ...any) error {
	return fmt.Errorf("%s: option %q: %s", o.where, name, fmt.Sprintf(format, args...))
}

// str returns the string option name, or def when it is absent.
func (o *options) str(name, def string) (string, error) {
	if !o.has(name) {
		return def, nil
	}
	s, ok := o.values[name].(string)
	if !ok {
		return "", o.errorf(name, "want a string, got %s", describe(o.values[name]))
	}
	return s, nil
}

// number returns the numeric option name, or def when it is absent.
func (o *options) number(name string, def float64) (float64, error) {
	if !o.has(name) {
		return def, nil
	}
	f, ok := toFloat(o.values[name])
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, o.errorf(name, "want a number, got %s", describe(o.values[name]))
	}
	return f, nil
}

// integer returns the whole-number option name between lo and hi, or def.
func (o *options) integer(name string, def, lo, hi int64) (int64, error) {
	if !o.has(name) {
		return def, nil
	}
	f, ok := toFloat(o.values[name])
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, o.errorf(name, "want a whole number, got %s", describe(o.values[name]))
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, o.errorf(name, "want a number between %d and %d, got %v", lo, hi, f)
	}
	return int64(f), nil
}

// duration returns the option name as a duration: a number of milliseconds
// or a Go duration string ("10s", "250ms"). It must be positive.
func (o *options) duration(name string, def time.Duration) (time.Duration, error) {
	if !o.has(name) {
		return def, nil
	}
	d, err := parseDuration(o.values[name])
	if err != nil {
		return 0, o.errorf(name, "%v", err)
	}
	return d, nil
}

// parseDuration reads milliseconds or a Go duration string; it must be positive.
func parseDuration(v any) (time.Duration, error) {
	var d time.Duration
	if s, ok := v.(string); ok {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("want milliseconds or a duration like \"10s\", got %q", s)
		}
	} else {
		f, ok := toFloat(v)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("want milliseconds or a duration like \"10s\", got %s", describe(v))
		}
		d = time.Duration(f * float64(time.Millisecond))
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, got %v", v)
	}
	return d, nil
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	default:
		return 0, false
	}
}

// describe names a value's JS type for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case int64, float64, int:
		return fmt.Sprintf("the number %v", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
