package integration

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// TestInteropDeltaView: the TypeScript package reads a delta table through its view (newest, by id,
// list) and gets what Go put; its put fails loudly and writes nothing.
func TestInteropDeltaView(t *testing.T) {
	dir := interopDir(t)
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	ctx := testCtx(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Storage: pgcheckpoint.StorageDelta})
	ts := newTS(t, schema)
	var ids []string
	snaps := interopSnapshots(t)
	for _, s := range snaps {
		id, err := cp.Put(ctx, "shared", s)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if got := ts.get(t, "shared", ""); !interopJSONEqual(t, got, snaps[len(snaps)-1]) {
		t.Errorf("TypeScript get of the newest through the view = %.300s, want the last Go put", got)
	}
	if got := ts.get(t, "shared", ids[0]); !interopJSONEqual(t, got, snaps[0]) {
		t.Errorf("TypeScript get by id through the view = %.300s, want the first Go put", got)
	}
	metas := ts.list(t, "shared")
	if len(metas) != len(ids) || metas[0].ID != ids[len(ids)-1] {
		t.Errorf("TypeScript list through the view = %+v, want %d checkpoints newest first", metas, len(ids))
	}
	argv := []string{filepath.Join(dir, "ziro.mjs"), "put", "--dsn", ts.dsn, "--schema", ts.schema, "--table", ts.table, "shared"}
	cmd := exec.CommandContext(ctx, "node", argv...)
	cmd.Stdin = bytes.NewReader(snaps[0])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "view") {
		t.Errorf("TypeScript put on a delta table: %v, stderr %q; want it to fail naming the view", err, stderr.String())
	}
	if list, err := cp.List(ctx, "shared", pgcheckpoint.ListOptions{Limit: -1}); err != nil || len(list) != len(ids) {
		t.Errorf("after the refused TypeScript put the thread holds %d checkpoints (%v), want %d", len(list), err, len(ids))
	}
}
