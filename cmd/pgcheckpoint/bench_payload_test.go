package main

import (
	"bytes"
	"compress/flate"
	"os"
	"testing"

	"github.com/ziroagent/pgcheckpoint/agentsnapshot"
)

// TestBenchPayload: every bench size gives a valid agent snapshot of exactly that many bytes, the same
// bytes each time, that compresses within 15% of the fixture of that size (what the server's TOAST
// compression and the network see is what bench measures).
func TestBenchPayload(t *testing.T) {
	t.Parallel()
	ratio := func(b []byte) float64 {
		var out bytes.Buffer
		w, _ := flate.NewWriter(&out, flate.BestSpeed)
		_, _ = w.Write(b)
		_ = w.Close()
		return float64(out.Len()) / float64(len(b))
	}
	names := map[int]string{1 << 10: "1KiB", 64 << 10: "64KiB", 1 << 20: "1MiB"}
	for _, size := range benchSizes {
		p, err := benchPayload(size)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != size {
			t.Fatalf("payload of %d bytes has %d", size, len(p))
		}
		again, _ := benchPayload(size)
		if !bytes.Equal(p, again) {
			t.Errorf("payload of %d bytes differs between calls", size)
		}
		s, err := agentsnapshot.Decode(p)
		if err != nil || s.Version != agentsnapshot.V2 || len(s.Messages) < 2 || s.Messages[0].Role != "system" {
			t.Fatalf("payload of %d bytes: %+v, %v", size, s, err)
		}
		fixture, err := os.ReadFile("../../testdata/fixtures/snapshot-" + names[size] + ".json")
		if err != nil {
			t.Fatal(err)
		}
		got, want := ratio(p), ratio(fixture)
		t.Logf("%s: compressed to %.3f, the fixture to %.3f", names[size], got, want)
		if got < want*0.85 || got > want*1.15 {
			t.Errorf("payload of %d bytes compresses to %.3f, the fixture to %.3f", size, got, want)
		}
	}
	if _, err := benchPayload(3 << 10); err == nil {
		t.Error("a payload of 3 KiB was made; bench offers only the fixture sizes")
	}
}
