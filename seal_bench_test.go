package pgcheckpoint

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// BenchmarkSeal measures the Go side of encryption at rest, no database: sealWith (AES-256-GCM with a
// fresh nonce, then base64 into the envelope) and sealer.open (parse the envelope, base64-decode,
// authenticate and decrypt) of the 1 KiB, 64 KiB and 1 MiB fixtures, in MB/s of plaintext.
//
//	go test -run '^$' -bench '^BenchmarkSeal$' -benchmem -count 5 .
func BenchmarkSeal(b *testing.B) {
	ctx := context.Background()
	k, err := NewKey("bench-1", bytes.Repeat([]byte{0x5a}, KeySize))
	if err != nil {
		b.Fatal(err)
	}
	ring, err := NewKeyRing(k)
	if err != nil {
		b.Fatal(err)
	}
	s := newSealer(ring, "public.ziro_checkpoints")
	key, aead, err := s.current(ctx)
	if err != nil {
		b.Fatal(err)
	}
	bind := binding{table: s.table, kind: bindRow, thread: "thread-1", at: "0193b7a2-7c1e-7000-8000-000000000001"}
	for _, name := range []string{"1KiB", "64KiB", "1MiB"} {
		plain, err := os.ReadFile("testdata/fixtures/snapshot-" + name + ".json")
		if err != nil {
			b.Fatal(err)
		}
		b.Run("op=seal/size="+name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				sealWith(key, aead, bind, plain)
			}
		})
		env := sealWith(key, aead, bind, plain)
		b.Run("op=open/size="+name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.open(ctx, bind, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
