package web

import (
	"net/url"
	"strings"
)

// Path fills the {name} wildcards of a route pattern (a service's Path
// constant, as its router registers it), in order, with values, each
// path-escaped. A wildcard without a value is left as it is.
func Path(pattern string, values ...string) string {
	var b strings.Builder
	rest := pattern
	for _, v := range values {
		open := strings.IndexByte(rest, '{')
		end := strings.IndexByte(rest, '}')
		if open < 0 || end < open {
			break
		}
		b.WriteString(rest[:open])
		b.WriteString(url.PathEscape(v))
		rest = rest[end+1:]
	}
	b.WriteString(rest)
	return b.String()
}
