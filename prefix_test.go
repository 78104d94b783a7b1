package pgcheckpoint

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	max := string(utf8.MaxRune)
	for _, c := range []struct{ prefix, want string }{
		{"a", "b"},
		{"tenant-42/", "tenant-420"},
		{"%", "&"},
		{"_", "`"},
		{`\`, "]"},
		{"\x7f", "\u0080"},       // one byte to two
		{"é", "ê"},               // C3 A9 -> C3 AA
		{"¿", "À"},               // C2 BF -> C3 80: incrementing the last byte would give C2 C0, no UTF-8
		{"\u07ff", "\u0800"},     // two bytes to three
		{"\uD7FF", "\uE000"},     // the surrogates are skipped
		{"\uffff", "\U00010000"}, // three bytes to four
		{"a" + max, "b"},         // carry: U+10FFFF has no next code point
		{"a" + max + max, "b"},
		{max, maxRuneEnd},
		{strings.Repeat(max, 256), maxRuneEnd},
	} {
		if got := prefixEnd(c.prefix); got != c.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", c.prefix, got, c.want)
		}
		if !utf8.ValidString(prefixEnd(c.prefix)) {
			t.Errorf("prefixEnd(%q) is not valid UTF-8", c.prefix)
		}
	}
}

// The range [prefix, prefixEnd(prefix)) holds exactly the valid thread ids that start with prefix.
func TestPrefixEndRange(t *testing.T) {
	t.Parallel()
	alphabet := []rune{'a', 'b', '%', '_', '\\', 0x7f, 0x80, 0xbf, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff, 0x10000, utf8.MaxRune - 1, utf8.MaxRune}
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		var b strings.Builder
		for range 1 + r.IntN(4) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 200000 {
		p, s := word(), word()
		if r.IntN(3) == 0 {
			s = p + s // make prefixed ids common
		}
		in := p <= s && s < prefixEnd(p)
		if in != strings.HasPrefix(s, p) {
			t.Fatalf("prefix %q, id %q: in range [%q, %q) = %v, HasPrefix = %v", p, s, p, prefixEnd(p), in, !in)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "a", "%_\\", "🙂"} {
		if err := checkPrefix(ok); err != nil {
			t.Errorf("checkPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"bad\xff", "nul\x00", strings.Repeat("x", 1025)} {
		if err := checkPrefix(bad); err == nil {
			t.Errorf("checkPrefix(%q) accepted it", bad)
		}
	}
}
