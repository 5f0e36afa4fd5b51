// Package deadletter holds what every dead-letter place of the platform
// shares: the reason text stored beside a record or row the platform gave up
// on, made safe to store and to show.
package deadletter

import (
	"strings"
	"unicode/utf8"
)

// MaxReason is the most bytes of reason text kept.
const MaxReason = 1000

// Reason returns why as text every store accepts: valid UTF-8 (invalid bytes
// become U+FFFD), no NUL or other control characters but tab, at most
// MaxReason bytes (cut at a rune boundary, marked with an ellipsis). The
// reason often quotes the refused input, which is hostile by definition.
func Reason(why string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(why, "\uFFFD") {
		if r < 0x20 && r != '\t' || r == 0x7f {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > MaxReason-len("…") {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
