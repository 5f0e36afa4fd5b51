package web

import (
	"net/http"
	"unicode/utf8"
)

// textProblem says what makes s unfit to store, log or forward as text, or
// "" when nothing does: bytes that are not UTF-8 (PostgreSQL refuses them,
// Go's JSON decoder silently replaces them), and control characters (NUL is
// refused by PostgreSQL; the others corrupt logs and headers).
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "must not contain control characters"
		}
	}
	return ""
}

// CheckText refuses, with a 400 naming field, a text value that is not valid
// UTF-8, holds a control character or is longer than max characters (not
// bytes; max <= 0: no bound).
func CheckText(field, s string, max int) error {
	if p := textProblem(s); p != "" {
		return Errorf(http.StatusBadRequest, field, "%s", p)
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		return Errorf(http.StatusBadRequest, field, "at most %d characters", max)
	}
	return nil
}
