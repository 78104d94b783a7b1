package pgcheckpoint

// The snapshot scanner as it was before the single-pass rewrite (encoding/json.Valid plus a second byte
// scan): the reference the differential tests compare inspectSnapshot with.

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"
)

// referenceInspect validates a snapshot and reads its top-level "version" without decoding the document:
// one validation pass (encoding/json.Valid) and one byte scan that tracks nesting and strings. It rejects,
// before anything is written, every input PostgreSQL's JSONB would refuse or that the table cannot echo.
func referenceInspect(b []byte, limit int) (snapshotFacts, error) {
	if limit > 0 && len(b) > limit {
		return snapshotFacts{}, fmt.Errorf("snapshot is %d bytes, the limit is %d: %w", len(b), limit, ErrSnapshotTooLarge)
	}
	if !utf8.Valid(b) {
		return snapshotFacts{}, fmt.Errorf("snapshot is not valid UTF-8: %w", ErrInvalidSnapshot)
	}
	if !json.Valid(b) {
		return snapshotFacts{}, fmt.Errorf("snapshot is not valid JSON: %w", ErrInvalidSnapshot)
	}
	var (
		depth     int
		expectKey bool   // at depth 1, the next string is a key
		isVersion bool   // the current top-level key is "version"
		version   []byte // raw value of the last top-level "version" (JSONB keeps the last duplicate)
		printed   = len(b)
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' {
			continue
		}
		if depth == 0 && c != '{' {
			return snapshotFacts{}, fmt.Errorf("snapshot must be a JSON object: %w", ErrInvalidSnapshot)
		}
		valueStart := depth == 1 && !expectKey && c != ',' && c != '}'
		if valueStart && isVersion {
			version = b[i : i+1] // a string, object or array: not an integer
		}
		switch c {
		case '{', '[':
			depth++
			expectKey = depth == 1
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			end, bad := refScanString(b, i)
			if bad != "" {
				return snapshotFacts{}, fmt.Errorf("snapshot holds %s, which JSONB cannot store: %w", bad, ErrInvalidSnapshot)
			}
			if depth == 1 && expectKey {
				isVersion = refIsVersionKey(b[i : end+1])
				expectKey = false
			}
			i = end
		default: // a number, true, false or null
			end := i
			for end < len(b) && !refIsDelim(b[end]) {
				end++
			}
			if valueStart && isVersion {
				version = b[i:end]
			}
			if c == '-' || (c >= '0' && c <= '9') {
				n, bad := refPGNumber(string(b[i:end]))
				if bad != "" {
					return snapshotFacts{}, fmt.Errorf("snapshot holds %s, which JSONB cannot store: %w", bad, ErrInvalidSnapshot)
				}
				printed += n - (end - i)
			}
			i = end - 1
		}
	}
	if max := printedLimit(limit); printed > len(b) && printed > max {
		return snapshotFacts{}, fmt.Errorf("snapshot is %d bytes as PostgreSQL prints it back (numbers written out in full), the limit is %d: %w",
			printed, max, ErrSnapshotTooLarge)
	}
	v, err := parseVersion(version)
	if err != nil {
		return snapshotFacts{}, err
	}
	return snapshotFacts{version: v, size: len(b)}, nil
}

// refPGNumber is pgNumber written another way: the number as digits and a big exponent, the value's
// decimal point moved by the exponent, then PostgreSQL numeric's limits applied to the written-out form.
func refPGNumber(n string) (printed int, bad string) {
	neg := strings.HasPrefix(n, "-")
	n = strings.TrimPrefix(n, "-")
	mant, expText, _ := strings.Cut(strings.ToLower(n), "e")
	exp := new(big.Int)
	if expText != "" {
		exp.SetString(strings.TrimPrefix(expText, "+"), 10)
	}
	if exp.CmpAbs(big.NewInt(1<<30-2)) > 0 {
		return 0, "a number whose exponent is beyond ±1073741822"
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	e := exp.Int64()
	scale := max(0, int64(len(frac))-e)
	if scale > 16383 {
		return 0, "a number with more than 16383 digits after the decimal point as PostgreSQL writes it out"
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return 1 + int(min(scale, 1)) + int(scale), ""
	}
	// digits is the value times 10^(len(frac)-e), leading zeros gone: the written-out integer part has
	// len(digits) - (len(frac)-e) digits, or is "0".
	intDigits := int64(len(digits)) - (int64(len(frac)) - e)
	if intDigits > 131072 {
		return 0, "a number with more than 131072 digits before the decimal point as PostgreSQL writes it out"
	}
	printed = int(max(intDigits, 1))
	if scale > 0 {
		printed += 1 + int(scale)
	}
	if neg {
		printed++
	}
	return printed, ""
}

// scanString returns the index of the closing quote of the string that opens at b[start], and a reason
// when the string holds an escape JSONB refuses: the NUL character (\u0000) or a lone UTF-16 surrogate.
// b is known to be valid JSON.
func refScanString(b []byte, start int) (end int, bad string) {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			if b[i+1] != 'u' {
				i++
				continue
			}
			r := refHex4(b[i+2 : i+6])
			switch {
			case r == 0:
				bad = "the NUL character (\\u0000)"
			case r >= 0xdc00 && r <= 0xdfff:
				bad = "a lone UTF-16 low surrogate"
			case r >= 0xd800 && r <= 0xdbff:
				if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' || refHex4(b[i+8:i+12]) < 0xdc00 || refHex4(b[i+8:i+12]) > 0xdfff {
					bad = "a lone UTF-16 high surrogate"
				} else {
					i += 6
				}
			}
			i += 5
		case '"':
			return i, bad
		}
	}
	return len(b) - 1, bad
}

// hex4 decodes four hex digits (already validated by json.Valid).
func refHex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

func refIsDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// isVersionKey reports whether the quoted key is "version", also when written with escapes.
func refIsVersionKey(quoted []byte) bool {
	if quoted == nil {
		return false
	}
	if string(quoted) == `"version"` {
		return true
	}
	if len(quoted) < 9 || len(quoted) > 64 {
		return false
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == "version"
}
