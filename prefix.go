package pgcheckpoint

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A thread id prefix selects the ids that start with it: in byte order they are the range from the
// prefix up to, not including, prefixEnd(prefix). Thread ids are valid UTF-8, and on valid UTF-8 byte
// order is code point order, so the end is the prefix with its last rune replaced by the next code
// point: incrementing the last byte instead would often make invalid UTF-8 ("¿" is C2 BF; C2 C0 is no
// character), which PostgreSQL refuses as a text parameter (SQLSTATE 22021). A last rune of U+10FFFF,
// which has no next code point, is dropped and the rune before it incremented, as a carry.

// maxRuneEnd is the end when every rune of the prefix is U+10FFFF, so nothing follows it: 257 times
// U+10FFFF (1028 bytes) sorts after every thread id of at most 1024 bytes. Only ids longer than that,
// which pgcheckpoint never writes, made of U+10FFFF alone, would sort after it.
var maxRuneEnd = strings.Repeat(string(utf8.MaxRune), 257)

// prefixEnd returns the first string after every string that starts with prefix, a valid thread id.
func prefixEnd(prefix string) string {
	rest := prefix
	for rest != "" {
		r, size := utf8.DecodeLastRuneInString(rest)
		rest = rest[:len(rest)-size]
		if r == utf8.MaxRune {
			continue // no next code point: carry into the rune before
		}
		next := r + 1
		if next == 0xD800 { // surrogates are no characters: the next one after U+D7FF is U+E000
			next = 0xE000
		}
		return rest + string(next)
	}
	return maxRuneEnd
}

// checkPrefix validates a thread id prefix: "" (every thread) or a valid thread id.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkThread(prefix); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}
