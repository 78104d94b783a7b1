package integration

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/agentsnapshot"
)

// The interop tests share one table between pgcheckpoint and the TypeScript package
// @ziro-agent/checkpoint-postgres (pinned in interop/package.json), driven through interop/ziro.mjs.
// They need node and `npm ci --prefix interop`; without them they fail in CI (CI=true) and skip elsewhere.

// tsSide runs the TypeScript package on one table.
type tsSide struct {
	dsn, schema, table string
	cap                int // 0: the package's default (100)
}

func interopDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "@ziro-agent", "checkpoint-postgres", "package.json")); err != nil {
		missing = "interop/node_modules is missing: run `npm ci --prefix interop`"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interop tests cannot run: %s", missing)
		}
		t.Skipf("interop tests skipped: %s", missing)
	}
	return dir
}

func newTS(t testing.TB, schema string) tsSide {
	t.Helper()
	interopDir(t)
	return tsSide{dsn: postgresDSN(t), schema: schema, table: pgcheckpoint.DefaultTable}
}

// run executes `node interop/ziro.mjs command args...` and decodes its JSON output into out (when not nil).
func (ts tsSide) run(t testing.TB, stdin []byte, out any, command string, args ...string) {
	t.Helper()
	if stderr, err := ts.runErr(t, stdin, out, command, args...); err != nil {
		t.Fatalf("node ziro.mjs %s %v: %v\n%s", command, args, err, stderr)
	}
}

// runErr is run that returns the command's failure and its error output instead of failing the test.
func (ts tsSide) runErr(t testing.TB, stdin []byte, out any, command string, args ...string) ([]byte, error) {
	t.Helper()
	argv := []string{filepath.Join(interopDir(t), "ziro.mjs"), command, "--dsn", ts.dsn, "--schema", ts.schema, "--table", ts.table}
	if ts.cap != 0 {
		argv = append(argv, "--cap", strconv.Itoa(ts.cap))
	}
	argv = append(argv, args...)
	cmd := exec.CommandContext(testCtx(t), "node", argv...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.Bytes(), err
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("node ziro.mjs %s: decode %q: %v", command, stdout.Bytes(), err)
		}
	}
	return stderr.Bytes(), nil
}

func (ts tsSide) ensure(t testing.TB) { ts.run(t, nil, nil, "ensure") }

func (ts tsSide) put(t testing.TB, thread string, snapshot []byte, args ...string) string {
	t.Helper()
	var r struct{ ID string }
	ts.run(t, snapshot, &r, "put", append([]string{thread}, args...)...)
	return r.ID
}

// get returns the snapshot as JSON.stringify writes it ("null" when there is none).
func (ts tsSide) get(t testing.TB, thread, id string) json.RawMessage {
	t.Helper()
	var raw json.RawMessage
	args := []string{thread}
	if id != "" {
		args = append(args, id)
	}
	ts.run(t, nil, &raw, "get", args...)
	return raw
}

type tsMeta struct {
	ID                   string    `json:"id"`
	ThreadID             string    `json:"threadId"`
	CreatedAt            time.Time `json:"createdAt"`
	AgentSnapshotVersion int32     `json:"agentSnapshotVersion"`
	SizeBytes            int32     `json:"sizeBytes"`
}

// list lists a thread with the package's default limit (its cap).
func (ts tsSide) list(t testing.TB, thread string, limit ...string) []tsMeta {
	t.Helper()
	var metas []tsMeta
	ts.run(t, nil, &metas, "list", append([]string{thread}, limit...)...)
	return metas
}

func (ts tsSide) delete(t testing.TB, thread, id string) { ts.run(t, nil, nil, "delete", thread, id) }

func interopJSONEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %.200s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %.200s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// interopSnapshots are agent snapshots in compact JSON, so JSON.stringify writes the same bytes and both
// sides agree on size_bytes.
func interopSnapshots(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range []string{"../testdata/fixtures/snapshot-1KiB.json", "../agentsnapshot/testdata/v1-pending.json", "../agentsnapshot/testdata/v2-pending.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.TrimSpace(b))
	}
	return out
}

// sameMetadata checks that Go's List and the TypeScript list agree: ids, order, version, size and
// created_at (JavaScript dates keep milliseconds).
func sameMetadata(t testing.TB, goList []pgcheckpoint.Checkpoint, tsList []tsMeta) {
	t.Helper()
	if len(goList) != len(tsList) {
		t.Fatalf("Go lists %d checkpoints, TypeScript %d", len(goList), len(tsList))
	}
	for i := range goList {
		g, s := goList[i], tsList[i]
		if g.ID != s.ID || g.ThreadID != s.ThreadID || g.Version != s.AgentSnapshotVersion || g.SizeBytes != s.SizeBytes ||
			!g.CreatedAt.Truncate(time.Millisecond).Equal(s.CreatedAt) {
			t.Errorf("entry %d: Go %+v, TypeScript %+v", i, g, s)
		}
	}
}

func goCheckpointer(t testing.TB, tg target, db *sql.DB, schema string, cap int) *pgcheckpoint.Checkpointer {
	t.Helper()
	opts := pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: cap}
	cp, err := pgcheckpoint.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	matchPolicy(t, cp, opts)
	return cp
}

// TestInteropTypeScriptWritesGoReads: snapshots the TypeScript package wrote, on the table its own helper
// created, read by Go before any migration: same JSON, ids, order, version, size and time.
func TestInteropTypeScriptWritesGoReads(t *testing.T) {
	for _, tg := range postgresTargets(t)[:2] { // reads are the same SQL for both dialects
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			ts := newTS(t, schema)
			ts.ensure(t)
			snaps := interopSnapshots(t)
			var ids []string
			for _, s := range snaps {
				ids = append(ids, ts.put(t, "conv-1", s))
			}
			cp := goCheckpointer(t, tg, db, schema, 0)
			ctx := testCtx(t)

			goList, err := cp.List(ctx, "conv-1", pgcheckpoint.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameMetadata(t, goList, ts.list(t, "conv-1"))
			for i, id := range ids {
				got, err := cp.Get(ctx, "conv-1", id)
				if err != nil {
					t.Fatalf("Go Get(%s): %v", id, err)
				}
				if !interopJSONEqual(t, got.Snapshot, snaps[i]) || !interopJSONEqual(t, got.Snapshot, ts.get(t, "conv-1", id)) {
					t.Errorf("snapshot %d differs:\nGo %s\nput %s", i, got.Snapshot, snaps[i])
				}
				if int(got.SizeBytes) != len(snaps[i]) {
					t.Errorf("size_bytes %d, want %d (the UTF-8 length of JSON.stringify)", got.SizeBytes, len(snaps[i]))
				}
			}
			// TypeScript ids carry no counter within a millisecond: its newest is the largest id, which
			// is what both sides return as the latest.
			newest := slices.Max(ids)
			latest, err := cp.Latest(ctx, "conv-1")
			if err != nil || latest.ID != newest || !interopJSONEqual(t, latest.Snapshot, ts.get(t, "conv-1", "")) {
				t.Errorf("Go latest = %s (%v), want %s, the same snapshot TypeScript returns", latest.ID, err, newest)
			}
			// The pending approvals a TypeScript agent left behind, read in Go.
			v1, err := cp.Get(ctx, "conv-1", ids[1])
			if err != nil {
				t.Fatal(err)
			}
			snap, err := agentsnapshot.Decode(v1.Snapshot)
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.PendingApprovals) != 2 || snap.PendingApprovals[0].ToolName != "refund" || snap.Version != 1 {
				t.Errorf("decoded TypeScript-written snapshot: %+v", snap)
			}
		})
	}
}

// TestInteropGoWritesTypeScriptReads: snapshots Go wrote, on the table EnsureSchema created, read and
// listed by the TypeScript package.
func TestInteropGoWritesTypeScriptReads(t *testing.T) {
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema})
			ts := newTS(t, schema)
			ctx := testCtx(t)
			snaps := interopSnapshots(t)
			snaps = append(snaps, []byte(`{"version": 2, "__ziro_snapshot__": true, "note": "spaces are counted by Go"}`))
			var ids []string
			for _, s := range snaps {
				id, err := cp.Put(ctx, "conv-2", s)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			goList, err := cp.List(ctx, "conv-2", pgcheckpoint.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameMetadata(t, goList, ts.list(t, "conv-2"))
			if goList[0].ID != ids[len(ids)-1] {
				t.Errorf("newest listed %s, want the last put %s", goList[0].ID, ids[len(ids)-1])
			}
			for i, id := range ids {
				if got := ts.get(t, "conv-2", id); !interopJSONEqual(t, got, snaps[i]) {
					t.Errorf("TypeScript get(%s) = %s, want %s", id, got, snaps[i])
				}
			}
			if got := ts.get(t, "conv-2", ""); !interopJSONEqual(t, got, snaps[len(snaps)-1]) {
				t.Errorf("TypeScript latest = %s", got)
			}
			if got := ts.get(t, "conv-2", "01890000-0000-7000-8000-000000000000"); string(got) != "null" {
				t.Errorf("TypeScript get of an unknown id = %s, want null", got)
			}
			// Go's delete is visible to TypeScript, and TypeScript's to Go.
			if err := cp.Delete(ctx, "conv-2", ids[0]); err != nil {
				t.Fatal(err)
			}
			ts.delete(t, "conv-2", ids[1])
			if n := len(ts.list(t, "conv-2")); n != len(ids)-2 {
				t.Errorf("TypeScript lists %d after two deletes, want %d", n, len(ids)-2)
			}
			if _, err := cp.Get(ctx, "conv-2", ids[1]); !errors.Is(err, pgcheckpoint.ErrNotFound) {
				t.Errorf("Go Get of the checkpoint TypeScript deleted: %v", err)
			}
		})
	}
}

// TestInteropEncryptedTypeScriptSees: what the TypeScript package makes of a table Go encrypts (docs/security.md,
// "What is stored"): it lists the checkpoints with their plaintext metadata, reads each snapshot as the
// envelope object, and its plaintext put is refused by the table's constraint.
func TestInteropEncryptedTypeScriptSees(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Keys: testKeys(t, "k1")})
	ts := newTS(t, schema)
	snap := []byte(`{"version": 2, "messages": ["private"]}`)
	id, err := cp.Put(testCtx(t), "enc", snap)
	if err != nil {
		t.Fatal(err)
	}
	list := ts.list(t, "enc")
	if len(list) != 1 || list[0].ID != id || list[0].AgentSnapshotVersion != 2 || int(list[0].SizeBytes) != len(snap) {
		t.Fatalf("TypeScript list = %+v", list)
	}
	var env map[string]any
	if err := json.Unmarshal(ts.get(t, "enc", id), &env); err != nil {
		t.Fatal(err)
	}
	if env["$"] != "enc1" || env["k"] != "k1" || len(env) != 3 || strings.Contains(fmt.Sprint(env["d"]), "private") {
		t.Fatalf("TypeScript reads %v, want the envelope", env)
	}
	stderr, err := ts.runErr(t, []byte(`{"version": 1, "plain": true}`), nil, "put", "enc")
	if err == nil || !bytes.Contains(stderr, []byte(pgcheckpoint.DefaultTable+"_encrypted")) {
		t.Fatalf("TypeScript plaintext put into an encrypted table: %v\n%s", err, stderr)
	}
	if n := count(t, db, `"`+schema+`".`+pgcheckpoint.DefaultTable, "enc"); n != 1 {
		t.Fatalf("the refused TypeScript put left %d rows", n)
	}
}

// checkRetention checks a thread after a Go put: exactly the cap newest of every id ever stored that was
// not deleted on purpose, newest first, and the Go put is the latest.
func checkRetention(t testing.TB, cp *pgcheckpoint.Checkpointer, thread string, all []string, cap int, lastGo string) {
	t.Helper()
	got, err := cp.List(testCtx(t), thread, pgcheckpoint.ListOptions{Limit: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(all)
	slices.Sort(want)
	slices.Reverse(want)
	want = want[:min(cap, len(want))]
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("thread holds %v, want the %d newest %v", ids, cap, want)
	}
	if ids[0] != lastGo {
		t.Fatalf("newest is %s, want the last Go put %s", ids[0], lastGo)
	}
}

// TestInteropSchemaHelpers runs each side's schema helper on a table the other created, then both write to
// one thread: Go's puts leave exactly the cap newest checkpoints, TypeScript's keep cap+1 (its own
// behaviour, a snapshot-isolation defect of its single statement).
func TestInteropSchemaHelpers(t *testing.T) {
	const cap = 3
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			snap := []byte(`{"version":2,"__ziro_snapshot__":true,"n":1}`)

			t.Run("GoEnsureSchemaOnTypeScriptTable", func(t *testing.T) {
				schema := newSchema(t, db)
				ts := newTS(t, schema)
				ts.cap = cap
				ts.ensure(t)
				var all []string
				for range 5 {
					all = append(all, ts.put(t, "shared", snap))
				}
				if n := count(t, db, fmt.Sprintf(`"%s".ziro_checkpoints`, schema), "shared"); n != cap+1 {
					t.Errorf("TypeScript alone keeps %d rows at cap %d, expected its known cap+1", n, cap)
				}
				all = all[len(all)-(cap+1):]
				cp := goCheckpointer(t, tg, db, schema, cap)
				// Reading needs no upgrade; writing needs the seq column EnsureSchema adds.
				if _, err := cp.Put(ctx, "shared", snap); !errors.Is(err, pgcheckpoint.ErrSchemaMissing) || pgcheckpoint.SQLState(err) != "42703" {
					t.Errorf("Go put before the upgrade: %v, want ErrSchemaMissing wrapping undefined column seq (42703)", err)
				}
				for range 2 { // idempotent
					if err := cp.EnsureSchema(ctx); err != nil {
						t.Fatalf("EnsureSchema on the TypeScript table: %v", err)
					}
				}
				interleave(t, cp, ts, db, schema, all, cap)
			})

			t.Run("TypeScriptEnsureOnGoTable", func(t *testing.T) {
				schema := newSchema(t, db)
				cp := goCheckpointer(t, tg, db, schema, cap)
				if err := cp.EnsureSchema(ctx); err != nil {
					t.Fatal(err)
				}
				ts := newTS(t, schema)
				ts.cap = cap
				ts.ensure(t)
				ts.ensure(t)
				if err := cp.EnsureSchema(ctx); err != nil {
					t.Fatalf("EnsureSchema after the TypeScript helper: %v", err)
				}
				interleave(t, cp, ts, db, schema, nil, cap)
			})
		})
	}
}

// interleave alternates Go and TypeScript puts on one thread and checks retention after every Go put.
func interleave(t *testing.T, cp *pgcheckpoint.Checkpointer, ts tsSide, db *sql.DB, schema string, all []string, cap int) {
	t.Helper()
	ctx := testCtx(t)
	table := fmt.Sprintf(`"%s".ziro_checkpoints`, schema)
	snap := []byte(`{"version":2,"__ziro_snapshot__":true,"n":2}`)
	for round := range 4 {
		for range round%2 + 1 {
			id, err := cp.Put(ctx, "shared", snap)
			if err != nil {
				t.Fatalf("round %d: Go put: %v", round, err)
			}
			all = append(all, id)
			checkRetention(t, cp, "shared", all, cap, id)
		}
		for range round + 1 {
			all = append(all, ts.put(t, "shared", snap))
		}
		if n, want := count(t, db, table, "shared"), min(len(all), cap+1); n != want {
			t.Errorf("round %d: after TypeScript puts the thread has %d rows, want %d (TypeScript keeps cap+1)", round, n, want)
		}
		all = newestOf(all, cap+1)
	}
	if got := ts.list(t, "shared", "100"); len(got) != cap+1 {
		t.Errorf("TypeScript lists %d, want %d", len(got), cap+1)
	}
}

// newestOf keeps the n largest ids.
func newestOf(ids []string, n int) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s[max(0, len(s)-n):]
}

// TestInteropTypeScriptClockAhead: a TypeScript writer whose clock runs an hour ahead stores the thread's
// newest id; a Go put after it still becomes the newest, and retention stays exact.
func TestInteropTypeScriptClockAhead(t *testing.T) {
	tg := postgresTargets(t)[0]
	t.Parallel()
	db := tg.open(t)
	ctx := testCtx(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 2})
	ts := newTS(t, schema)
	snap := []byte(`{"version":2,"__ziro_snapshot__":true}`)
	var all []string
	for range 2 {
		id, err := cp.Put(ctx, "skew", snap)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, id)
	}
	ahead := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	tsID := ts.put(t, "skew", snap, "--now", ahead)
	all = append(all, tsID)
	id, err := cp.Put(ctx, "skew", snap)
	if err != nil {
		t.Fatal(err)
	}
	if id <= tsID {
		t.Fatalf("Go id %s does not sort after the TypeScript id %s from a clock ahead", id, tsID)
	}
	all = append(all, id)
	checkRetention(t, cp, "skew", all, 2, id)
}

// TestInteropTypeScriptDeletesMiddle: the TypeScript package deletes one checkpoint without renumbering
// the thread, leaving a gap in the numbering the trim relies on. The first Go put after it keeps one
// checkpoint fewer than the cap (the boundary row sits one below where exact retention would put it:
// documented in docs/interop.md); every later put keeps exactly the cap newest again. Order and the
// upper bound always hold.
func TestInteropTypeScriptDeletesMiddle(t *testing.T) {
	const cap = 3
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)
			ctx := testCtx(t)
			schema := newSchema(t, db)
			cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: cap})
			ts := newTS(t, schema)
			snap := []byte(`{"version":2,"__ziro_snapshot__":true}`)
			var all []string
			put := func() string {
				id, err := cp.Put(ctx, "gap", snap)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, id)
				return id
			}
			for range cap {
				put()
			}
			ts.delete(t, "gap", all[1])
			all = slices.Delete(all, 1, 2)
			put()
			checkRetention(t, cp, "gap", all, cap-1, all[len(all)-1])
			all = newestOf(all, cap-1)
			for range 3 {
				checkRetention(t, cp, "gap", all, cap, put())
			}
		})
	}
}

// TestInteropNodeSuite runs the Node.js test file interop/ziro.test.mjs (the TypeScript package alone on
// the same server) so CI executes it too.
func TestInteropNodeSuite(t *testing.T) {
	dsn := postgresDSN(t)
	dir := interopDir(t)
	cmd := exec.CommandContext(testCtx(t), "node", "--test", "--test-concurrency=1", filepath.Join(dir, "ziro.test.mjs"))
	cmd.Env = append(os.Environ(), "PGCHECKPOINT_TEST_DSN="+dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
