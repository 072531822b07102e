package wire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestErrorMessageBounded: a message quoting request content is cut to a
// size every response version can carry, on a rune boundary.
func TestErrorMessageBounded(t *testing.T) {
	for _, msg := range []string{"short", strings.Repeat("é", 40000), strings.Repeat("x", MaxErrorMessageBytes+1)} {
		got := *ErrorMessage(msg)
		if len(got) > MaxErrorMessageBytes || !utf8.ValidString(got) {
			t.Errorf("message of %d bytes: %d bytes, valid UTF-8 %v", len(msg), len(got), utf8.ValidString(got))
		}
		if len(msg) <= MaxErrorMessageBytes && got != msg {
			t.Errorf("a short message changed: %q", got)
		}
	}
}
