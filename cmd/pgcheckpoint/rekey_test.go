package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// keyLine is keygen's output: id:base64 of 32 bytes.
var keyLine = regexp.MustCompile(`^([A-Za-z0-9._-]+):([A-Za-z0-9+/]{43}=)\n$`)

// newKey runs keygen for id and returns the line (without its newline) and the secret's base64.
func newKey(t *testing.T, id string) (entry, secret string) {
	t.Helper()
	out := cli(t, "", "keygen", id).must(t, exitOK).stdout
	m := keyLine.FindStringSubmatch(out)
	if m == nil || m[1] != id {
		t.Fatalf("keygen %s printed %q", id, out)
	}
	return strings.TrimSuffix(out, "\n"), m[2]
}

// keysFile writes a key ring file of entries and returns the --keys-file flag.
func keysFile(t *testing.T, entries ...string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ring.txt")
	if err := os.WriteFile(p, []byte("# test ring\n"+strings.Join(entries, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--keys-file", p}
}

// TestKeygen: one id:base64 line of a fresh 32-byte key; a bad id is exit 2; no id makes one.
func TestKeygen(t *testing.T) {
	t.Parallel()
	_, a := newKey(t, "k1")
	_, b := newKey(t, "k1")
	if raw, err := base64.StdEncoding.DecodeString(a); err != nil || len(raw) != 32 || a == b {
		t.Fatalf("keygen secrets %q, %q (%v)", a, b, err)
	}
	if out := cli(t, "", "keygen").must(t, exitOK).stdout; !keyLine.MatchString(out) || !strings.HasPrefix(out, "k2") {
		t.Fatalf("keygen without an id printed %q", out)
	}
	cli(t, "", "keygen", "bad id").must(t, exitUsage)
	cli(t, "", "keygen", "a", "b").must(t, exitUsage)
}

// TestRekeyCommand encrypts a plaintext table with `rekey --json`, then rotates it to a second key:
// get opens every snapshot, put seals, ls/threads/stats need no keys, a keyless get or put is exit 6,
// as is rekey without keys, and no output ever shows a secret.
func TestRekeyCommand(t *testing.T) {
	t.Parallel()
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			for _, th := range []string{"t1", "t2", "t3"} {
				for i := range 4 {
					cli(t, `{"thread": "`+th+`", "i": `+string(rune('0'+i))+`}`, args("put", c, []string{th})...).must(t, exitOK)
				}
			}
			k1, s1 := newKey(t, "k1")
			k2, s2 := newKey(t, "k2")
			ring1, ring21, ring2 := keysFile(t, k1), keysFile(t, k2, k1), keysFile(t, k2)
			var outputs []string
			keep := func(r result) result { outputs = append(outputs, r.stdout, r.stderr); return r }

			r := keep(cli(t, "", args("rekey", c, []string{"--json", "--batch", "5"})...))
			if r.must(t, exitKeys); !strings.Contains(r.stderr, "PGCHECKPOINT_KEYS") {
				t.Fatalf("rekey without keys: %q", r.stderr)
			}
			r = keep(cli(t, "", args("rekey", c, ring1, []string{"--json", "--batch", "5"})...))
			var res rekeyResult
			if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &res) != nil || res.State != "required" || res.Resealed != 12 || res.Batches != 3 {
				t.Fatalf("rekey: exit %d, %q, %q", r.code, r.stdout, r.stderr)
			}
			if n := strings.Count(r.stderr, "rekey: pass 1 batch "); n != 3 || !strings.Contains(r.stderr, "scanned 12, resealed 12") {
				t.Fatalf("progress lines: %q", r.stderr)
			}
			if got := keep(cli(t, "", args("get", c, ring1, []string{"t2"})...)).must(t, exitOK).stdout; got != "{\"i\": 3, \"thread\": \"t2\"}\n" {
				t.Fatalf("get after rekey: %q", got)
			}
			keep(cli(t, `{"new": 1}`, args("put", c, ring1, []string{"t1"})...)).must(t, exitOK)
			keep(cli(t, `{"plain": 1}`, args("put", c, []string{"t1"})...)).must(t, exitKeys)
			keep(cli(t, "", args("get", c, []string{"t1"})...)).must(t, exitKeys)
			for _, cmd := range [][]string{{"ls", "t1"}, {"threads"}, {"stats"}} {
				keep(cli(t, "", args(cmd[0], c, cmd[1:])...)).must(t, exitOK)
			}

			// Rotation: k2 current, k1 for reading; then k2 alone reads everything.
			keep(cli(t, "", args("get", c, ring2, []string{"t3"})...)).must(t, exitKeys)
			r = keep(cli(t, "", args("rekey", c, ring21)...))
			if r.code != exitOK || !strings.Contains(r.stdout, "is required: resealed 13 rows of 13 rows scanned") {
				t.Fatalf("rotation: %q", r.stdout)
			}
			if got := keep(cli(t, "", args("get", c, ring2, []string{"t1"})...)).must(t, exitOK).stdout; got != "{\"new\": 1}\n" {
				t.Fatalf("get with k2 alone: %q", got)
			}
			keep(cli(t, "", args("get", c, ring1, []string{"t1"})...)).must(t, exitKeys)
			keep(cli(t, "", args("rekey", c, keysFile(t, "k3:not-base64"))...)).must(t, exitUsage)
			keep(cli(t, "", args("rekey", c, ring1, []string{"--after", "no-slash"})...)).must(t, exitUsage)
			for _, out := range outputs {
				for _, s := range []string{s1, s2, s1[:20], s2[:20]} {
					if strings.Contains(out, s) {
						t.Fatalf("output shows a secret: %q", out)
					}
				}
			}
		})
	}
}

// TestKeysEnv: $PGCHECKPOINT_KEYS is the ring when --keys-file is absent; a malformed one is exit 2
// and its message shows no secret. (Not parallel: it sets the environment.)
func TestKeysEnv(t *testing.T) {
	schema := newSchema(t)
	c := conn(t, "pgx", schema)
	k1, s1 := newKey(t, "k1")
	t.Setenv(keysEnv, k1)
	cli(t, "", args("migrate", c)...).must(t, exitOK) // an empty table with keys: it requires encryption
	cli(t, `{"a": 1}`, args("put", c, []string{"t"})...).must(t, exitOK)
	if got := cli(t, "", args("get", c, []string{"t"})...).must(t, exitOK).stdout; got != "{\"a\": 1}\n" {
		t.Fatalf("get: %q", got)
	}
	t.Setenv(keysEnv, "")
	cli(t, `{"a": 2}`, args("put", c, []string{"t"})...).must(t, exitKeys)
	t.Setenv(keysEnv, "k1:"+s1[:30]) // cut short: not base64 of 32 bytes
	r := cli(t, "", args("get", c, []string{"t"})...).must(t, exitUsage)
	if strings.Contains(r.stderr, s1[:30]) || !strings.Contains(r.stderr, "PGCHECKPOINT_KEYS") {
		t.Fatalf("malformed ring: %q", r.stderr)
	}
}

// TestInterruptRekey: SIGINT while a batch waits for a row lock exits 130 and prints the position to
// rerun from; the rerun with --after reseals exactly the rest.
func TestInterruptRekey(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			c := conn(t, driver, schema)
			cli(t, "", args("migrate", c)...).must(t, exitOK)
			ctx := testCtx(t)
			db := adminDB(t)
			table := `"` + schema + `".ziro_checkpoints`
			// 30 rows in one thread; the constraint added as rekey adds it (its ALTER TABLE would wait
			// for the row lock below), so the run goes straight to its batches.
			if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (thread_id, checkpoint_id, snapshot, version, size_bytes, seq)
				SELECT 'th', '01a22823-0000-7000-8000-' || lpad(to_hex(r), 12, '0'), jsonb_build_object('r', r), 0, 8, r
				FROM generate_series(1, 30) r`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `ALTER TABLE `+table+` ADD CONSTRAINT ziro_checkpoints_encrypted
				CHECK (COALESCE(snapshot->>'$' = 'enc1', false)) NOT VALID`); err != nil {
				t.Fatal(err)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			// Row 13 is in the third batch of 5.
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM `+table+` WHERE checkpoint_id = '01a22823-0000-7000-8000-00000000000d' FOR UPDATE`); err != nil {
				t.Fatal(err)
			}
			k1, _ := newKey(t, "k1")
			ring := keysFile(t, k1)
			var stdout bytes.Buffer
			cmd, term := startOnTerminal(t, bin, &stdout, args("rekey", c, ring, []string{"--batch", "5"})...)
			term.waitFor(t, "rekey: pass 1 batch 2: at th/01a22823-0000-7000-8000-00000000000a, scanned 10, resealed 10")
			if code := interrupt(t, cmd); code != exitInterrupted {
				t.Fatalf("exit %d, want 130; terminal:\n%q", code, term.String())
			}
			<-term.done
			want := "pgcheckpoint: rekey: interrupted at th/01a22823-0000-7000-8000-00000000000a (table " + schema +
				".ziro_checkpoints migrating), after resealing 10 rows; rerun with --after th/01a22823-0000-7000-8000-00000000000a to continue"
			if !strings.Contains(term.String(), want) {
				t.Fatalf("terminal:\n%q\nwant %q", term.String(), want)
			}
			tx.Rollback()
			r := cli(t, "", args("rekey", c, ring, []string{"--after", "th/01a22823-0000-7000-8000-00000000000a"})...)
			if r.code != exitOK || !strings.Contains(r.stdout, "is required: resealed 20 rows of 20 rows scanned") {
				t.Fatalf("rerun: exit %d, %q, %q", r.code, r.stdout, r.stderr)
			}
			if got := cli(t, "", args("get", c, ring, []string{"th", "01a22823-0000-7000-8000-00000000000d"})...).must(t, exitOK).stdout; got != "{\"r\": 13}\n" {
				t.Fatalf("get: %q", got)
			}
		})
	}
}
