package jsonscan

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// sameAsReference fails when Inspect and the reference scanner (encoding/json.Valid plus a byte
// scan) disagree on in: valid or not, the facts, the kind of refusal, and the reason (except which refused
// escape a string that holds several is named for).
func sameAsReference(t testing.TB, in []byte) {
	t.Helper()
	got, gerr := Inspect(in, 0)
	want, werr := referenceInspect(in, 0)
	switch {
	case (gerr == nil) != (werr == nil):
		t.Fatalf("%q: got %v, %v; reference %v, %v", in, got, gerr, want, werr)
	case gerr == nil && got != want:
		t.Fatalf("%q: got %+v, reference %+v", in, got, want)
	case gerr != nil && !isKind(gerr, Invalid) && !isKind(gerr, TooLarge):
		t.Fatalf("%q: error without a kind: %v", in, gerr)
	case gerr != nil && !isKind(gerr, werr.(*Error).Kind):
		t.Fatalf("%q: got %v (kind %d); reference %v (kind %d)", in, gerr, gerr.(*Error).Kind, werr, werr.(*Error).Kind)
	case gerr != nil && gerr.Error() != werr.Error() && !(strings.Contains(gerr.Error(), " holds ") && strings.Contains(werr.Error(), " holds ")):
		t.Fatalf("%q: got %v; reference %v", in, gerr, werr)
	}
}

// isKind reports whether err is an *Error of kind k.
func isKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

var scanCases = []string{
	`{}`, ` { } `, `{"version":2}`, `{"version":-3,"a":[1,2,{"version":"x"}]}`, `{"version":1.0}`, `{"version":1e0}`,
	`{"version":1.5}`, `{"version":"2"}`, `{"version":{}}`, `{"version":[]}`, `{"version":[1]}`, `{"version":{"a":1}}`,
	`{"version":true}`, `{"version":null}`, `{"version":2147483648}`, `{"version":-2147483648}`, `{"version":1,"version":2}`,
	`{"vers\u0069on":7}`, `{"version\u0000":7}`, `{"a":"\u0000"}`, `{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud83d\ude00"}`,
	`{"a":"\ud83d\u0041"}`, `{"a":"\ud83d"}`, `{"a":"\u0000\udc00"}`, `{"\u0000":1}`, `{"a":"\/\b\f\n\r\t\"\\"}`, `{"a":"\x"}`,
	`{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\x7f\"}", `{"a":"é€😀"}`, `[]`, `[1]`, `"s"`, `1`, `null`, ``, ` `,
	`{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":1}x`, `{"a":1}{}`, `{"a":1} `, `{"a":[1,]}`,
	`{"a":[,1]}`, `{"a":[1 2]}`, `{"a":01}`, `{"a":-}`, `{"a":-0}`, `{"a":1.}`, `{"a":.1}`, `{"a":1e}`, `{"a":1e+}`,
	`{"a":1E-5}`, `{"a":+1}`, `{"a":tru}`, `{"a":truex}`, `{"a":nul}`, `{"a":falsey}`, `{"a":[}`, `{"a":[]]}`, `{"a":{]}`,
	`{"a":"unterminated}`, `{"a":"x"`, `{"a" : [ { } , [ ] , "" , 0 ] }`, "{\t\n\r\"a\"\t:\n1\r}", `{1:2}`, `{"a":1:2}`,
	`{"a":"\`, `{"a":"\u`, `{"a":"\ud83d\`, `{"a":"\ud83d\u`, `{"a":"\ud83d\ude0`, `{"version":2}` + "\x00",
}

func TestInspectSnapshotMatchesReference(t *testing.T) {
	for _, c := range scanCases {
		sameAsReference(t, []byte(c))
	}
	deep := strings.Repeat(`{"a":`, maxNesting) + `1` + strings.Repeat(`}`, maxNesting)
	sameAsReference(t, []byte(deep))
	deeper := `{"a":` + strings.Repeat(`[`, maxNesting) + strings.Repeat(`]`, maxNesting) + `}`
	sameAsReference(t, []byte(deeper))
	for _, name := range []string{"1KiB", "64KiB", "1MiB"} {
		b, err := os.ReadFile("../../testdata/fixtures/snapshot-" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		sameAsReference(t, b)
	}
}

// TestInspectSnapshotMutations compares the two scanners on thousands of small random edits of valid
// snapshots (deterministic seed): most edits break the JSON in some way, which is what a scanner gets
// wrong.
func TestInspectSnapshotMutations(t *testing.T) {
	seeds := []string{
		`{"version":2,"messages":[{"role":"user","content":"hi \"there\" \u00e9"}],"n":-1.5e3,"ok":true,"z":null}`,
		`{"a":{"b":[1,{"c":"\ud83d\ude00"}]},"version":1e0,"s":"\\\/"}`,
	}
	fix, err := os.ReadFile("../../testdata/fixtures/snapshot-1KiB.json")
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, string(fix))
	const alphabet = "{}[]\":,\\/ 0123456789-+.eEtrufalsn\x00\x01\xc3\xa9u"
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		b := []byte(seeds[r.IntN(len(seeds))])
		for k := r.IntN(3) + 1; k > 0; k-- {
			p := r.IntN(len(b) + 1)
			c := alphabet[r.IntN(len(alphabet))]
			switch r.IntN(3) {
			case 0: // insert
				b = append(b[:p], append([]byte{c}, b[p:]...)...)
			case 1: // delete
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			default: // replace
				if p < len(b) {
					b[p] = c
				}
			}
		}
		sameAsReference(t, b)
	}
}

// FuzzInspectSnapshot runs the same comparison under `go test -fuzz FuzzInspectSnapshot`.
func FuzzInspectSnapshot(f *testing.F) {
	for _, c := range scanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsReference(t, b) })
}

func BenchmarkInspectSnapshot(b *testing.B) {
	for _, name := range []string{"1KiB", "64KiB", "1MiB"} {
		snap, err := os.ReadFile("../../testdata/fixtures/snapshot-" + name + ".json")
		if err != nil {
			b.Fatal(err)
		}
		for _, impl := range []struct {
			name string
			f    func([]byte, int) (Facts, error)
		}{{"single-pass", Inspect}, {"reference", referenceInspect}} {
			b.Run("size="+name+"/impl="+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(snap)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := impl.f(snap, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
