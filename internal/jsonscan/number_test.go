package jsonscan

import (
	"strings"
	"testing"
)

// pgPrinted is what PostgreSQL 15 does with each number as a JSONB value, measured on the server with
// select length((('{"a":N}'::jsonb)->'a')::text): its printed length, or -1 for 22003 (value overflows
// numeric format). TestPGNumberOnServer (package integration) checks the same table against the server.
var pgPrinted = []struct {
	n       string
	printed int
}{
	{"0", 1}, {"-0", 1}, {"-0.0", 3}, {"-0e5", 1}, {"0.000e3", 1}, {"1.000", 5}, {"1.0e1", 2}, {"123.456e-1", 7},
	{"12e-1", 3}, {"-0.00e-2", 6}, {"0.000100e2", 6}, {"100e-2", 4}, {"-12.5", 5}, {"1E+2", 3},
	{"1e131071", 131072}, {"-1e131071", 131073}, {"9.9e131071", 131072}, {"0.1e131072", 131072},
	{"0.01e131073", 131072}, {"1E+131071", 131072}, {"1e131072", -1}, {"10e131071", -1},
	{"0e131073", 1}, {"0e200000", 1}, {"0e1073741822", 1}, {"0e1073741823", -1}, {"1e99999999999999999999", -1},
	{"1e-16383", 16385}, {"1.5e-16382", 16385}, {"0.00001e-16378", 16385}, {"1e-16384", -1}, {"1.50e-16382", -1},
	{"0.0e-16383", -1}, {"0e-16383", 16385}, {"0e-16384", -1}, {"1e-1073741822", -1}, {"-1e-99999999999999999999", -1},
}

// TestPGNumber: defect 2. The scanner predicts PostgreSQL's verdict and printed length for every number
// of the table; before the fix it accepted 1e131072 and 1e-16384 (SQLSTATE 22003 from the server).
func TestPGNumber(t *testing.T) {
	for _, c := range pgPrinted {
		printed, bad := pgNumber([]byte(c.n))
		if c.printed < 0 {
			if bad == "" {
				t.Errorf("pgNumber(%s) = %d, want refused", c.n, printed)
			}
			_, err := Inspect([]byte(`{"a":`+c.n+`}`), 0)
			if !isKind(err, Invalid) {
				t.Errorf("Inspect({\"a\":%s}): err = %v, want Invalid", c.n, err)
			}
			continue
		}
		if bad != "" || printed != c.printed {
			t.Errorf("pgNumber(%s) = %d, %q; PostgreSQL prints %d bytes", c.n, printed, bad, c.printed)
		}
	}
}

// TestPrintedSizeLimit: defect 2. A snapshot of 8,200 copies of 1e131071 is 74 KB as sent and 1 GiB as
// PostgreSQL prints it: every read of it failed with out of memory (54000). The limit counts the printed
// size, so it is refused before anything is sent, with or without a size limit.
func TestPrintedSizeLimit(t *testing.T) {
	poison := []byte(`{"a":[` + strings.Repeat(`1e131071,`, 8199) + `1e131071]}`)
	for _, limit := range []int{16 << 20, 0, 1 << 30} {
		if _, err := Inspect(poison, limit); !isKind(err, TooLarge) {
			t.Errorf("limit %d: err = %v, want TooLarge", limit, err)
		}
	}
	// The printed size is exact: {"a":1e3} prints as {"a":1000} (plus JSONB's space after the colon).
	if _, err := Inspect([]byte(`{"a":1e3}`), len(`{"a":1000}`)); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if _, err := Inspect([]byte(`{"a":1e3}`), len(`{"a":1000}`)-1); !isKind(err, TooLarge) {
		t.Errorf("one byte over the limit as printed: err = %v, want TooLarge", err)
	}
	// Numbers that shrink (1.0e1 prints as 10) do not raise the limit for what was sent.
	if _, err := Inspect([]byte(`{"a":1.0e1}`), len(`{"a":1.0e1}`)-1); !isKind(err, TooLarge) {
		t.Errorf("over the limit as sent: err = %v, want TooLarge", err)
	}
}

// TestInspectSnapshotAllocs: the scanner, number rule included, allocates nothing.
func TestInspectSnapshotAllocs(t *testing.T) {
	b := []byte(`{"version":3,"n":[1e131071,-0.5e-16382,123.456,0,-0.0e5,7],"s":"\u00e9\ud83d\ude00"}`)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Inspect(b, 0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Inspect allocates %.0f times, want 0", n)
	}
}

// TestPGNumberMatchesReference compares pgNumber with refPGNumber on the measured table and on numbers
// built from random parts around the limits.
func TestPGNumberMatchesReference(t *testing.T) {
	check := func(n string) {
		t.Helper()
		gp, gb := pgNumber([]byte(n))
		rp, rb := refPGNumber(n)
		if gp != rp || gb != rb {
			t.Fatalf("%s: pgNumber %d %q, reference %d %q", n, gp, gb, rp, rb)
		}
	}
	for _, c := range pgPrinted {
		check(c.n)
	}
	ints := []string{"0", "1", "9", "10", "12345", "100000"}
	fracs := []string{"", ".0", ".5", ".000", ".0001", ".10", ".00000000001"}
	exps := []string{"", "e0", "E+3", "e-3", "e131067", "e131068", "e131071", "e131072", "e131076", "e-16378", "e-16382",
		"e-16383", "e-16384", "e-16394", "e1073741822", "e1073741823", "e-1073741822", "e-1073741823", "e00000000000000000000000007"}
	for _, sign := range []string{"", "-"} {
		for _, i := range ints {
			for _, f := range fracs {
				for _, e := range exps {
					check(sign + i + f + e)
				}
			}
		}
	}
}
