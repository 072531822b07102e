package wire

import "strings"

// MaxErrorMessageBytes bounds the error messages servers put in responses.
// Non-flexible versions carry strings with an int16 length (32767 bytes at
// most), and a message may quote request content (a resource name, a
// replica list), so without a bound a hostile request could make its own
// response undecodable.
const MaxErrorMessageBytes = 1024

// ErrorMessage is msg as a response's error message, cut to
// MaxErrorMessageBytes (on a rune boundary, marked with "…").
func ErrorMessage(msg string) *string {
	if len(msg) > MaxErrorMessageBytes {
		msg = strings.ToValidUTF8(msg[:MaxErrorMessageBytes-len("…")], "") + "…"
	}
	return &msg
}
