package jsonscan

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// The oracle fuzz test checks Inspect against encoding/json and the contract's rules, independently of
// the reference scanner; its seed corpus runs with every `go test`, and
// `go test -fuzz=FuzzSnapshot ./internal/jsonscan` explores further.

// FuzzSnapshot: Inspect (what every put of a Checkpointer and of Memory runs first) accepts a snapshot
// exactly when encoding/json and the contract's rules do: valid UTF-8 JSON, an object, no NUL character and no
// lone surrogate in any string (JSONB refuses both), a top-level "version" (the last one, as JSONB keeps)
// that is a number with an integer value within int32. An accepted snapshot echoes its version and size.
func FuzzSnapshot(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"version": 2}`, `{"version": -2147483648}`, `{"version": 2147483648}`, `{"version": 1.5}`, `{"version": 1e1}`,
		`{"version": 1E400}`, `{"version": "1"}`, `{"version": null}`, `{"version": true}`, `{"version": [1]}`, `{"version": -0}`,
		`{"version": "x", "version": 7}`, `{"version": 7, "version": "x"}`, `{"vers\u0069on": 5}`, `{"a": {"version": "x"}}`,
		`{"a": "\u0000"}`, `{"\u0000": 1}`, `{"a": "\\u0000"}`, `{"a": "\ud83d\ude00"}`, `{"a": "\ud83d"}`, `{"a": "\ude00"}`,
		`{"a": "\ud83d\u0041"}`, `{"a": "\ud83d\\ude00"}`, `[]`, `1`, `"s"`, `null`, ` {"a": 1} `, `{"a": 1}x`, `{"a":`, "{\"a\": \"\xff\"}",
		`{"version": 2147483647.0}`, `{"version": 0.0000001e7}`, `{"a": 1e131071}`, `{"a": 1e131072}`, `{"a": 1e-16384}`,
		`{"a": 1e-16383}`, `{"a": 0e1073741823}`, `{"a": 1, "a": 1e131072}`, `{"a": -0.50e-16382}`, `{"a": [1, {"version": 1}], "version": 3}`, "\ufeff{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		wantVersion, why := snapshotOracle(b)
		facts, err := Inspect(b, 0)
		if why != "" {
			want := Invalid
			if why == whyPrintedTooLarge {
				want = TooLarge
			}
			if !isKind(err, want) {
				t.Fatalf("Inspect(%q): err = %v, want kind %d (%s)", b, err, want, why)
			}
			return
		}
		if err != nil {
			t.Fatalf("Inspect(%q): %v, want it accepted", b, err)
		}
		if facts.Version != wantVersion || facts.Size != len(b) {
			t.Fatalf("Inspect(%q): version %d, size %d; want version %d, size %d", b, facts.Version, facts.Size, wantVersion, len(b))
		}
	})
}

// whyPrintedTooLarge is the oracle's reason for a snapshot whose numbers, written out in full, exceed
// MaxPrintedBytes: the one refusal that is TooLarge rather than Invalid.
const whyPrintedTooLarge = "too large as PostgreSQL prints it"

// snapshotOracle decides a snapshot with encoding/json and says why it is bad ("" when it is not).
func snapshotOracle(b []byte) (version int32, why string) {
	if !utf8.Valid(b) || !json.Valid(b) {
		return 0, "not UTF-8 JSON"
	}
	var top map[string]json.RawMessage // encoding/json, like JSONB, keeps the last duplicate key
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return 0, "not an object"
	}
	var doc any
	_ = json.Unmarshal(b, &doc)
	if hasNUL(doc) {
		return 0, "a NUL character"
	}
	if loneSurrogate(b) {
		return 0, "a lone surrogate"
	}
	grow, ok := numbersGrow(b)
	if !ok {
		return 0, "a number beyond PostgreSQL numeric's range"
	}
	if grow > 0 && len(b)+grow > MaxPrintedBytes {
		return 0, whyPrintedTooLarge
	}
	raw, ok := top["version"]
	if !ok {
		return 0, ""
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, "version is not a number"
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil || v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, "version is not an integer within int32"
	}
	return int32(v), ""
}

// numbersGrow sums how much longer the numbers of b (valid JSON) are as PostgreSQL prints them
// (refPGNumber), every number counted, duplicate keys' too (JSONB parses them all before it keeps the
// last), and reports false when one is beyond numeric's range.
func numbersGrow(b []byte) (grow int, ok bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err != nil {
			return grow, true
		}
		if n, isNum := tok.(json.Number); isNum {
			printed, bad := refPGNumber(string(n))
			if bad != "" {
				return 0, false
			}
			grow += printed - len(n)
		}
	}
}

func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// loneSurrogate reports a \uD800-\uDFFF escape that is not part of a high+low pair of adjacent escapes.
// Backslashes occur in valid JSON only inside strings, so escapes can be read off the raw text in order.
func loneSurrogate(b []byte) bool {
	type escape struct{ at, end, unit int } // unit -1: not a \u escape
	var escs []escape
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			escs = append(escs, escape{i, i + 2, -1})
			i++
			continue
		}
		u := 0
		for _, c := range b[i+2 : i+6] {
			u = u*16 + strings.IndexByte("0123456789abcdef", c|0x20)
		}
		escs = append(escs, escape{i, i + 6, u})
		i += 5
	}
	high := func(u int) bool { return u >= 0xd800 && u <= 0xdbff }
	low := func(u int) bool { return u >= 0xdc00 && u <= 0xdfff }
	for k := 0; k < len(escs); k++ {
		switch u := escs[k].unit; {
		case high(u):
			if k+1 == len(escs) || escs[k+1].at != escs[k].end || !low(escs[k+1].unit) {
				return true
			}
			k++
		case low(u):
			return true
		}
	}
	return false
}
