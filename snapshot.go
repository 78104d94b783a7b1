package pgcheckpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ziroagent/pgcheckpoint/internal/snapshotfacts"
)

// pgcheckpointmock computes the version and size it expects a put to send with this package's scanner.
func init() {
	snapshotfacts.Inspect = func(b []byte) (int32, int, error) {
		f, err := inspectSnapshot(b, 0)
		return f.version, f.size, err
	}
}

// snapshotFacts is what a put learns from the snapshot bytes before anything is sent.
type snapshotFacts struct {
	version int32
	size    int
}

// inspectSnapshot validates a snapshot and reads its top-level "version" without decoding the document,
// in one pass over the bytes after a UTF-8 check (no allocation except for nesting deeper than 64). It
// rejects, before anything is written, every input PostgreSQL's JSONB would refuse or that the table
// cannot echo: what encoding/json.Valid rejects, the NUL character (\u0000) and lone UTF-16 surrogates
// in strings, a number beyond PostgreSQL numeric's range (see pgNumber), and a top-level "version" that
// is not an integer within int32. JSONB keeps a number's digits and expands its exponent when printing
// it (1e100000 comes back as 100001 digits), so the size limit also applies to the snapshot as
// PostgreSQL prints it back, every number written out in full: a snapshot that is small as sent can then
// never make a read return more than the limit (and with no limit, more than maxPrintedBytes).
func inspectSnapshot(b []byte, limit int) (snapshotFacts, error) {
	if limit > 0 && len(b) > limit {
		return snapshotFacts{}, fmt.Errorf("snapshot is %d bytes, the limit is %d: %w", len(b), limit, ErrSnapshotTooLarge)
	}
	if !utf8.Valid(b) {
		return snapshotFacts{}, fmt.Errorf("snapshot is not valid UTF-8: %w", ErrInvalidSnapshot)
	}
	if i := skipSpace(b, 0); i == len(b) || b[i] != '{' {
		if json.Valid(b) {
			return snapshotFacts{}, fmt.Errorf("snapshot must be a JSON object: %w", ErrInvalidSnapshot)
		}
		return snapshotFacts{}, fmt.Errorf("snapshot is not valid JSON: %w", ErrInvalidSnapshot)
	}
	version, grow, bad, ok := scanJSON(b)
	if !ok {
		return snapshotFacts{}, fmt.Errorf("snapshot is not valid JSON: %w", ErrInvalidSnapshot)
	}
	if bad != "" {
		return snapshotFacts{}, fmt.Errorf("snapshot holds %s, which JSONB cannot store: %w", bad, ErrInvalidSnapshot)
	}
	if printed, max := len(b)+grow, printedLimit(limit); grow > 0 && printed > max {
		return snapshotFacts{}, fmt.Errorf("snapshot is %d bytes as PostgreSQL prints it back (numbers written out in full), the limit is %d: %w",
			printed, max, ErrSnapshotTooLarge)
	}
	v, err := parseVersion(version)
	if err != nil {
		return snapshotFacts{}, err
	}
	return snapshotFacts{version: v, size: len(b)}, nil
}

// maxNesting is encoding/json's nesting limit, kept so that validity means the same as json.Valid.
const maxNesting = 10000

// scanJSON checks that b is exactly one JSON value (the grammar of RFC 8259, as encoding/json.Valid
// reads it) and returns the raw value of the last top-level "version" key (JSONB keeps the last
// duplicate; for a string, object or array just its first byte, which is never an integer), how many
// bytes longer its numbers are as PostgreSQL prints them than as written (grow, negative when they
// shrink), and the first escape or number JSONB refuses. ok is false when b is not valid JSON; grow and
// bad are then meaningless.
func scanJSON(b []byte) (version []byte, grow int, bad string, ok bool) {
	var (
		stackBuf [64]byte
		stack    = stackBuf[:0] // '{' or '[' per open container
		i        = 0
		isVer    bool // the value about to be read belongs to a top-level "version" key
	)
	for {
		// A value starts here.
		i = skipSpace(b, i)
		if i == len(b) {
			return nil, 0, "", false
		}
		start := i
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxNesting {
				return nil, 0, "", false
			}
			if isVer {
				version = b[i : i+1]
			}
			stack = append(stack, c)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']': empty container
				stack = stack[:len(stack)-1]
				i, ok = i+1, true
				break
			}
			if c == '{' {
				if i, isVer, ok = scanKey(b, i, len(stack) == 1, &bad); !ok {
					return nil, 0, "", false
				}
			} else {
				isVer = false
			}
			continue
		case c == '"':
			var reason string
			if i, reason, ok = scanString(b, i); !ok {
				return nil, 0, "", false
			}
			if bad == "" {
				bad = reason
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i, ok = scanNumber(b, i); !ok {
				return nil, 0, "", false
			}
			printed, reason := pgNumber(b[start:i])
			grow += printed - (i - start)
			if bad == "" {
				bad = reason
			}
		case c == 't':
			i, ok = scanLiteral(b, i, "true")
		case c == 'f':
			i, ok = scanLiteral(b, i, "false")
		case c == 'n':
			i, ok = scanLiteral(b, i, "null")
		default:
			return nil, 0, "", false
		}
		if !ok {
			return nil, 0, "", false
		}
		if isVer {
			version = b[start:i] // a number or literal: parseVersion decides
			if c := b[start]; c == '"' || c == '{' || c == '[' {
				version = b[start : start+1]
			}
		}
		// After a value: close containers, or a comma and the next member or element.
		for {
			i = skipSpace(b, i)
			if len(stack) == 0 {
				return version, grow, bad, i == len(b)
			}
			if i == len(b) {
				return nil, 0, "", false
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return nil, 0, "", false
			}
			i++
			if top == '{' {
				if i, isVer, ok = scanKey(b, skipSpace(b, i), len(stack) == 1, &bad); !ok {
					return nil, 0, "", false
				}
			} else {
				isVer = false
			}
			break
		}
	}
}

// scanKey reads an object key and its colon at b[i]; isVer reports a top-level "version" key.
func scanKey(b []byte, i int, top bool, bad *string) (next int, isVer, ok bool) {
	if i == len(b) || b[i] != '"' {
		return i, false, false
	}
	end, reason, ok := scanString(b, i)
	if !ok {
		return i, false, false
	}
	if *bad == "" {
		*bad = reason
	}
	isVer = top && isVersionKey(b[i:end])
	end = skipSpace(b, end)
	if end == len(b) || b[end] != ':' {
		return end, false, false
	}
	return end + 1, isVer, true
}

// plain marks the bytes a JSON string holds as they are: not '"', not '\\', not a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string that opens at b[start] and returns the index after its closing quote, and
// a reason when it holds an escape JSONB refuses: the NUL character (\u0000) or a lone UTF-16 surrogate.
func scanString(b []byte, start int) (next int, bad string, ok bool) {
	i := start + 1
	for {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i == len(b) {
			return i, "", false
		}
		switch b[i] {
		case '"':
			return i + 1, bad, true
		case '\\':
			if i+1 == len(b) {
				return i, "", false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				return i, "", false
			}
			r, ok := hex4(b, i+2)
			if !ok {
				return i, "", false
			}
			i += 6
			switch {
			case r == 0:
				bad = orFirst(bad, "the NUL character (\\u0000)")
			case r >= 0xdc00 && r <= 0xdfff:
				bad = orFirst(bad, "a lone UTF-16 low surrogate")
			case r >= 0xd800 && r <= 0xdbff:
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if lo, ok := hex4(b, i+2); ok && lo >= 0xdc00 && lo <= 0xdfff {
						i += 6
						continue
					}
				}
				bad = orFirst(bad, "a lone UTF-16 high surrogate")
			}
		default: // a control character
			return i, "", false
		}
	}
}

func orFirst(have, reason string) string {
	if have != "" {
		return have
	}
	return reason
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// scanNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

// PostgreSQL numeric's limits, which JSONB numbers have (src/backend/utils/adt/numeric.c): a value below
// 10^131072 (a base-10000 weight that fits in int16), at most 16383 digits after the decimal point (the
// display scale's 14 bits, trailing zeros included), and an exponent, as written, within ±1073741822
// (INT_MAX/2, checked before anything else, also for zero).
const (
	pgMaxIntDigits  = 131072
	pgMaxFracDigits = 16383
	pgMaxExponent   = 1<<30 - 2
)

// maxPrintedBytes bounds the printed size of a snapshot whose numbers grow when written out in full,
// when the size limit is off or larger: JSONB's own largest document (2^28-1 bytes), far below the 1 GiB
// a server can print (beyond it every read fails with SQLSTATE 54000, out of memory).
const maxPrintedBytes = 1<<28 - 1

// printedLimit is the most bytes a snapshot may take as PostgreSQL prints it back, for size limit limit.
func printedLimit(limit int) int {
	if limit <= 0 || limit > maxPrintedBytes {
		return maxPrintedBytes
	}
	return limit
}

// pgNumber returns how many bytes PostgreSQL prints for the valid JSON number n (numeric's text form:
// no exponent, its fractional digits kept, trailing zeros included, and no sign for zero), or why numeric
// cannot hold it. It allocates nothing.
func pgNumber(n []byte) (printed int, bad string) {
	i := 0
	neg := n[0] == '-'
	if neg {
		i++
	}
	intStart := i
	i = skipDigits(n, i)
	intLen, zeroInt := i-intStart, n[intStart] == '0' // JSON's integer part is "0" or has no leading zero
	fracLen, leadingZeros := 0, 0                     // leadingZeros: of the fraction, when zeroInt
	if i < len(n) && n[i] == '.' {
		j := skipDigits(n, i+1)
		fracLen = j - i - 1
		for zeroInt && leadingZeros < fracLen && n[i+1+leadingZeros] == '0' {
			leadingZeros++
		}
		i = j
	}
	var exp int64
	if i < len(n) { // 'e' or 'E'
		i++
		expNeg := n[i] == '-'
		if n[i] == '-' || n[i] == '+' {
			i++
		}
		for ; i < len(n); i++ {
			if exp <= pgMaxExponent { // saturates: anything larger is refused below
				exp = exp*10 + int64(n[i]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	if exp > pgMaxExponent || exp < -pgMaxExponent {
		return 0, "a number whose exponent is beyond ±1073741822"
	}
	scale := max(0, int64(fracLen)-exp) // digits after the point as printed
	if scale > pgMaxFracDigits {
		return 0, "a number with more than 16383 digits after the decimal point as PostgreSQL writes it out"
	}
	printed = 1 // the integer part: "0" when the value is below 1
	if scale > 0 {
		printed += 1 + int(scale)
	}
	if zeroInt && leadingZeros == fracLen {
		return printed, "" // zero: no sign
	}
	weight := int64(intLen-1) + exp // decimal exponent of the leading nonzero digit
	if zeroInt {
		weight = int64(-1-leadingZeros) + exp
	}
	if weight >= pgMaxIntDigits {
		return 0, "a number with more than 131072 digits before the decimal point as PostgreSQL writes it out"
	}
	if weight > 0 {
		printed += int(weight)
	}
	if neg {
		printed++
	}
	return printed, ""
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// isVersionKey reports whether the quoted key is "version", also when written with escapes.
func isVersionKey(quoted []byte) bool {
	if string(quoted) == `"version"` {
		return true
	}
	if len(quoted) < 9 || len(quoted) > 64 || bytes.IndexByte(quoted, '\\') < 0 {
		return false
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == "version"
}

// parseVersion turns the raw top-level "version" value into the column value: 0 when absent, else an
// integer within int32 (1, 1.0 and 1e0 all mean 1).
func parseVersion(raw []byte) (int32, error) {
	if raw == nil {
		return 0, nil
	}
	if n, err := strconv.ParseInt(string(raw), 10, 32); err == nil {
		return int32(n), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, fmt.Errorf("top-level \"version\" is %s, want an integer within int32: %w", raw, ErrInvalidSnapshot)
	}
	return int32(f), nil
}
