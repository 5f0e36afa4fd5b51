// Package analytics is the analytics router: it consumes event envelopes
// from Kafka, matches them against EventBridge-style event patterns read
// from a rules file, and delivers each match to the rule's targets (a Kafka
// topic, an HTTP webhook, a JSONL file, AWS EventBridge), committing offsets
// only once every target acknowledged.
//
// Patterns match the envelope as JSON, as it is on the wire: `id`, `type`,
// `version`, `occurredAt`, `correlationId`, `source`, `data.…`. For users
// who write EventBridge patterns out of habit, the top-level keys
// `detail-type` and `detail` are accepted as aliases of `type` and `data`.
//
// It must never change an event: targets receive the envelope as it came.
package analytics

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Pattern is a compiled EventBridge event pattern. The zero value matches nothing.
//
// Semantics, as EventBridge documents them:
//   - every field of the pattern must match (AND); the values listed for a
//     field are alternatives (OR); `$or` lists alternative sub-patterns;
//   - an array in the event matches when any of its elements matches;
//   - exact values compare strings, numbers (numerically), booleans and null
//     by type: `[""]` does not match null and `["5"]` does not match 5;
//   - a field missing from the event matches only `{"exists": false}`; a
//     field present with the value null matches `[null]` and
//     `{"exists": true}`, nothing else (an empty array counts as missing);
//   - `wildcard` takes `*` for any run of characters (`\*` is a literal star);
//   - `prefix`, `suffix`, `equals-ignore-case`, `wildcard` and `anything-but` with a
//     prefix or suffix apply to strings only; `numeric` to JSON numbers only,
//     between -5e9 and 5e9;
//   - `anything-but` matches a present, non-null value that is none of the
//     listed ones.
type Pattern struct {
	fields []field
	ors    [][]*Pattern
}

type field struct {
	key   string
	sub   *Pattern    // nested object pattern, or
	conds []condition // leaf alternatives
}

type condKind uint8

const (
	condString condKind = iota
	condNumber
	condBool
	condNull
	condPrefix
	condSuffix
	condIgnoreCase
	condAnythingBut
	condNumeric
	condExists
	condWildcard
)

type condition struct {
	kind    condKind
	str     string // exact string, prefix, suffix, ignore-case value (lower-cased when fold)
	num     float64
	flag    bool // bool value; exists value
	fold    bool // prefix/suffix compared case-insensitively
	numeric []numericOp
	but     *anythingBut
	glob    []string // wildcard: literal segments between the stars
}

type numericOp struct {
	op  string
	val float64
}

type anythingBut struct {
	strs   map[string]bool
	nums   map[float64]bool
	prefix string
	suffix string
	fold   bool // strs are lower-cased: equals-ignore-case
	kind   string
}

// FieldError is a pattern or rules-file error at Path, e.g.
// "pattern.data.totalCents: numeric wants pairs of operator and number".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

func errAt(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// ParsePattern compiles a pattern given as JSON.
func ParsePattern(b []byte) (*Pattern, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, errAt("pattern", "not JSON: %v", err)
	}
	return CompilePattern(v, "pattern")
}

// CompilePattern compiles a pattern decoded from JSON or YAML (maps with
// string keys, slices, strings, numbers, booleans, nil); path names it in errors.
func CompilePattern(v any, path string) (*Pattern, error) {
	return compilePattern(v, path, 0)
}

// MaxPatternDepth bounds how deep a pattern nests objects and $or lists:
// matching recurses as deep, and no event is nested deeper.
const MaxPatternDepth = 32

func compilePattern(v any, path string, depth int) (*Pattern, error) {
	m, ok := asMap(v)
	if !ok {
		return nil, errAt(path, "must be an object of fields")
	}
	if len(m) == 0 {
		return nil, errAt(path, "is empty; a pattern needs at least one field")
	}
	return compileObject(m, path, true, depth)
}

var topAliases = map[string]string{"detail-type": "type", "detail": "data"}

func compileObject(m map[string]any, path string, top bool, depth int) (*Pattern, error) {
	if depth >= MaxPatternDepth {
		return nil, errAt(path, "nested deeper than %d levels", MaxPatternDepth)
	}
	p := &Pattern{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors and match order
	for _, k := range keys {
		v := m[k]
		fpath := path + "." + k
		if k == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return nil, errAt(fpath, "wants a list of at least two patterns")
			}
			var or []*Pattern
			for i, a := range alts {
				sub, err := compilePattern(a, fmt.Sprintf("%s[%d]", fpath, i), depth+1)
				if err != nil {
					return nil, err
				}
				or = append(or, sub)
			}
			p.ors = append(p.ors, or)
			continue
		}
		key := k
		if top {
			if alias, ok := topAliases[k]; ok {
				key = alias
				if _, dup := m[alias]; dup {
					return nil, errAt(fpath, "is an alias of %q, which the pattern also has", alias)
				}
			}
		}
		if sm, ok := asMap(v); ok {
			if len(sm) == 0 {
				return nil, errAt(fpath, "is an empty object")
			}
			sub, err := compileObject(sm, fpath, false, depth+1)
			if err != nil {
				return nil, err
			}
			p.fields = append(p.fields, field{key: key, sub: sub})
			continue
		}
		list, ok := v.([]any)
		if !ok {
			return nil, errAt(fpath, "must be a list of values or an object (got %s)", describe(v))
		}
		if len(list) == 0 {
			return nil, errAt(fpath, "is an empty list, which matches nothing")
		}
		f := field{key: key}
		for i, item := range list {
			c, err := compileCondition(item, fmt.Sprintf("%s[%d]", fpath, i), fpath)
			if err != nil {
				return nil, err
			}
			f.conds = append(f.conds, c)
		}
		p.fields = append(p.fields, f)
	}
	return p, nil
}

func compileCondition(item any, ipath, fpath string) (condition, error) {
	switch x := item.(type) {
	case nil:
		return condition{kind: condNull}, nil
	case string:
		return condition{kind: condString, str: x}, nil
	case bool:
		return condition{kind: condBool, flag: x}, nil
	case []any:
		return condition{}, errAt(ipath, "nested lists are not allowed")
	}
	if n, ok := asNumber(item); ok {
		return condition{kind: condNumber, num: n}, nil
	}
	m, ok := asMap(item)
	if !ok {
		return condition{}, errAt(ipath, "unsupported value %s", describe(item))
	}
	if len(m) != 1 {
		return condition{}, errAt(ipath, "an operator object has exactly one key (got %d)", len(m))
	}
	for op, arg := range m {
		switch op {
		case "prefix", "suffix":
			kind := condPrefix
			if op == "suffix" {
				kind = condSuffix
			}
			if s, ok := arg.(string); ok {
				return condition{kind: kind, str: s}, nil
			}
			if am, ok := asMap(arg); ok && len(am) == 1 {
				if s, ok := am["equals-ignore-case"].(string); ok {
					return condition{kind: kind, str: strings.ToLower(s), fold: true}, nil
				}
			}
			return condition{}, errAt(fpath, "%s wants a string or {equals-ignore-case: string}", op)
		case "equals-ignore-case":
			s, ok := arg.(string)
			if !ok {
				return condition{}, errAt(fpath, "equals-ignore-case wants a string")
			}
			return condition{kind: condIgnoreCase, str: strings.ToLower(s)}, nil
		case "wildcard":
			s, ok := arg.(string)
			if !ok {
				return condition{}, errAt(fpath, "wildcard wants a string")
			}
			glob, err := compileWildcard(s)
			if err != nil {
				return condition{}, errAt(fpath, "%v", err)
			}
			return condition{kind: condWildcard, glob: glob}, nil
		case "exists":
			b, ok := arg.(bool)
			if !ok {
				return condition{}, errAt(fpath, "exists wants true or false")
			}
			return condition{kind: condExists, flag: b}, nil
		case "numeric":
			ops, err := compileNumeric(arg, fpath)
			if err != nil {
				return condition{}, err
			}
			return condition{kind: condNumeric, numeric: ops}, nil
		case "anything-but":
			ab, err := compileAnythingBut(arg, fpath)
			if err != nil {
				return condition{}, err
			}
			return condition{kind: condAnythingBut, but: ab}, nil
		default:
			return condition{}, errAt(fpath, "unknown operator %q (known: prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists)", op)
		}
	}
	panic("unreachable")
}

const numericLimit = 5e9

func compileNumeric(arg any, fpath string) ([]numericOp, error) {
	list, ok := arg.([]any)
	if !ok || len(list) == 0 || len(list)%2 != 0 {
		return nil, errAt(fpath, "numeric wants pairs of operator and number")
	}
	var ops []numericOp
	lower, upper, eq := 0, 0, 0
	for i := 0; i < len(list); i += 2 {
		op, ok := list[i].(string)
		if !ok {
			return nil, errAt(fpath, "numeric wants pairs of operator and number")
		}
		n, ok := asNumber(list[i+1])
		if !ok {
			return nil, errAt(fpath, "numeric wants pairs of operator and number (%q is followed by %s)", op, describe(list[i+1]))
		}
		if math.IsNaN(n) || n < -numericLimit || n > numericLimit {
			return nil, errAt(fpath, "numeric value %v is outside -5e9..5e9", n)
		}
		switch op {
		case ">", ">=":
			lower++
		case "<", "<=":
			upper++
		case "=":
			eq++
		default:
			return nil, errAt(fpath, "numeric operator %q is not one of =, <, <=, >, >=", op)
		}
		ops = append(ops, numericOp{op: op, val: n})
	}
	if lower > 1 || upper > 1 || eq > 1 || (eq == 1 && len(ops) > 1) {
		return nil, errAt(fpath, "numeric wants one lower bound and/or one upper bound, or a single \"=\"")
	}
	return ops, nil
}

func compileAnythingBut(arg any, fpath string) (*anythingBut, error) {
	ab := &anythingBut{strs: map[string]bool{}, nums: map[float64]bool{}}
	add := func(v any) error {
		if s, ok := v.(string); ok {
			ab.strs[s] = true
			return nil
		}
		if n, ok := asNumber(v); ok {
			ab.nums[n] = true
			return nil
		}
		return errAt(fpath, "anything-but wants strings or numbers (got %s)", describe(v))
	}
	switch x := arg.(type) {
	case []any:
		if len(x) == 0 {
			return nil, errAt(fpath, "anything-but wants at least one value")
		}
		for _, v := range x {
			if err := add(v); err != nil {
				return nil, err
			}
		}
		return ab, nil
	}
	if m, ok := asMap(arg); ok {
		if len(m) != 1 {
			return nil, errAt(fpath, "anything-but wants one of prefix, suffix or equals-ignore-case")
		}
		for op, v := range m {
			switch op {
			case "prefix", "suffix":
				s, ok := v.(string)
				if !ok || s == "" {
					return nil, errAt(fpath, "anything-but %s wants a non-empty string", op)
				}
				ab.kind = op
				if op == "prefix" {
					ab.prefix = s
				} else {
					ab.suffix = s
				}
				return ab, nil
			case "equals-ignore-case":
				ab.fold = true
				ab.kind = op
				vals, ok := v.([]any)
				if !ok {
					vals = []any{v}
				}
				for _, x := range vals {
					s, ok := x.(string)
					if !ok {
						return nil, errAt(fpath, "anything-but equals-ignore-case wants strings")
					}
					ab.strs[strings.ToLower(s)] = true
				}
				return ab, nil
			default:
				return nil, errAt(fpath, "anything-but operator %q is not one of prefix, suffix, equals-ignore-case", op)
			}
		}
	}
	if err := add(arg); err != nil {
		return nil, err
	}
	return ab, nil
}

// Match reports whether the event (a JSON object decoded into map[string]any,
// numbers as float64) matches p.
func (p *Pattern) Match(ev map[string]any) bool {
	if p == nil || (len(p.fields) == 0 && len(p.ors) == 0) {
		return false
	}
	return p.matchObject(ev)
}

func (p *Pattern) matchObject(ev map[string]any) bool {
	for i := range p.fields {
		f := &p.fields[i]
		v, present := ev[f.key]
		if f.sub != nil {
			if !f.sub.matchValue(v) {
				return false
			}
			continue
		}
		if !matchLeaf(f.conds, v, present) {
			return false
		}
	}
	for _, alts := range p.ors {
		matched := false
		for _, a := range alts {
			if a.matchObject(ev) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

// matchValue matches a nested pattern against an event value: an object, or
// an array of which one element must match. A missing object matches only a
// sub-pattern that asks for nothing to exist.
func (p *Pattern) matchValue(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return p.matchObject(x)
	case []any:
		for _, e := range x {
			if p.matchValue(e) {
				return true
			}
		}
		if len(x) > 0 {
			return false
		}
	}
	// Missing, null, a scalar or an empty array where an object was expected:
	// every field below is missing.
	return p.matchObject(nil)
}

func matchLeaf(conds []condition, v any, present bool) bool {
	if arr, ok := v.([]any); ok {
		if len(arr) == 0 {
			present = false
		} else {
			for _, e := range arr {
				if _, nested := e.([]any); nested {
					if matchLeaf(conds, e, true) {
						return true
					}
					continue
				}
				if matchScalar(conds, e) {
					return true
				}
			}
			return false
		}
	}
	if !present {
		for i := range conds {
			if conds[i].kind == condExists && !conds[i].flag {
				return true
			}
		}
		return false
	}
	return matchScalar(conds, v)
}

func matchScalar(conds []condition, v any) bool {
	for i := range conds {
		if conds[i].match(v) {
			return true
		}
	}
	return false
}

func (c *condition) match(v any) bool {
	switch c.kind {
	case condExists:
		return c.flag
	case condNull:
		return v == nil
	case condString:
		s, ok := v.(string)
		return ok && s == c.str
	case condNumber:
		n, ok := v.(float64)
		return ok && n == c.num
	case condBool:
		b, ok := v.(bool)
		return ok && b == c.flag
	case condPrefix:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if c.fold {
			return len(s) >= len(c.str) && strings.EqualFold(s[:len(c.str)], c.str)
		}
		return strings.HasPrefix(s, c.str)
	case condSuffix:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if c.fold {
			return len(s) >= len(c.str) && strings.EqualFold(s[len(s)-len(c.str):], c.str)
		}
		return strings.HasSuffix(s, c.str)
	case condIgnoreCase:
		s, ok := v.(string)
		return ok && strings.EqualFold(s, c.str)
	case condNumeric:
		n, ok := v.(float64)
		if !ok {
			return false
		}
		for _, o := range c.numeric {
			var pass bool
			switch o.op {
			case "=":
				pass = n == o.val
			case "<":
				pass = n < o.val
			case "<=":
				pass = n <= o.val
			case ">":
				pass = n > o.val
			case ">=":
				pass = n >= o.val
			}
			if !pass {
				return false
			}
		}
		return true
	case condAnythingBut:
		return c.but.match(v)
	case condWildcard:
		s, ok := v.(string)
		return ok && matchWildcard(c.glob, s)
	}
	return false
}

func (ab *anythingBut) match(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		switch ab.kind {
		case "prefix":
			return !strings.HasPrefix(x, ab.prefix)
		case "suffix":
			return !strings.HasSuffix(x, ab.suffix)
		case "equals-ignore-case":
			return !ab.strs[strings.ToLower(x)]
		}
		return !ab.strs[x]
	case float64:
		if ab.kind == "prefix" || ab.kind == "suffix" || ab.kind == "equals-ignore-case" {
			return false
		}
		return !ab.nums[x]
	case bool:
		return ab.kind == ""
	}
	return false
}

// compileWildcard splits a wildcard pattern at its unescaped stars: "a*b*"
// -> ["a", "b", ""]. `\*` is a literal star; two stars in a row are refused,
// as EventBridge does.
func compileWildcard(p string) ([]string, error) {
	var segs []string
	var cur strings.Builder
	prevStar := false
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p) && (p[i+1] == '*' || p[i+1] == '\\'):
			cur.WriteByte(p[i+1])
			i++
			prevStar = false
		case p[i] == '*':
			if prevStar {
				return nil, fmt.Errorf("wildcard %q has consecutive stars", p)
			}
			segs = append(segs, cur.String())
			cur.Reset()
			prevStar = true
		default:
			cur.WriteByte(p[i])
			prevStar = false
		}
	}
	return append(segs, cur.String()), nil
}

// matchWildcard: the first segment is a prefix, the last a suffix, the
// others appear in order between them (leftmost match is enough).
func matchWildcard(segs []string, s string) bool {
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	mid := s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(mid, seg)
		if i < 0 {
			return false
		}
		mid = mid[i+len(seg):]
	}
	return true
}

// asMap accepts the map shapes JSON and YAML decoders produce.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[fmt.Sprint(k)] = x
		}
		return out, true
	}
	return nil, false
}

func asNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "a list"
	}
	if _, ok := asNumber(v); ok {
		return fmt.Sprintf("number %v", v)
	}
	if _, ok := asMap(v); ok {
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
