package integration

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ziroagent/pgcheckpoint"
)

// TestLeastPrivilege runs every runtime operation as a role that has only USAGE on the schema and
// SELECT, INSERT, UPDATE, DELETE on the table, for every driver x dialect; EnsureSchema with that role
// fails with ErrPermission and says which privilege it lacks. The role (cluster-wide) has a random name
// and is dropped at cleanup.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	for _, tg := range postgresTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			admin := tg.open(t)
			schema := newSchema(t, admin)
			tg.newCheckpointer(t, admin, pgcheckpoint.Options{Schema: schema, MaxCheckpointsPerThread: 3})
			ctx := testCtx(t)
			var b [6]byte
			_, _ = rand.Read(b[:])
			role := "pgct_role_" + hex.EncodeToString(b[:])
			if _, err := admin.ExecContext(ctx, `CREATE ROLE `+role+` LOGIN`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for _, stmt := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
					if _, err := admin.ExecContext(testCtx(t), stmt); err != nil {
						t.Errorf("%s: %v", stmt, err)
					}
				}
			})
			for _, stmt := range []string{
				`GRANT USAGE ON SCHEMA "` + schema + `" TO ` + role,
				`GRANT SELECT, INSERT, UPDATE, DELETE ON ` + tableIn(schema) + ` TO ` + role,
				`GRANT SELECT ON "` + schema + `"."ziro_checkpoints_policy" TO ` + role,
			} {
				if _, err := admin.ExecContext(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			tg.dsn = withUser(t, tg.dsn, role)
			db := tg.open(t) // closed before the role is dropped (cleanups run last-in first-out)
			cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: tg.dialect, Schema: schema, MaxCheckpointsPerThread: 3})
			if err != nil {
				t.Fatal(err)
			}
			step := func(what string, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s as the least-privileged role: %v", what, err)
				}
			}

			var head string
			for range 5 { // with retention
				head, err = cp.Put(ctx, "t", []byte(`{"version": 1}`))
				step("Put", err)
			}
			head, err = putAfter(cp, ctx, "t", head, []byte(`{}`))
			step("PutAfter", err)
			_, err = cp.PutIfEmpty(ctx, "fresh", []byte(`{}`))
			step("PutAfter an empty thread", err)
			_, err = cp.Latest(ctx, "t")
			step("Get newest", err)
			_, err = cp.Get(ctx, "t", head)
			step("Get by id", err)
			list, err := cp.List(ctx, "t", pgcheckpoint.ListOptions{})
			step("List", err)
			_, err = cp.List(ctx, "t", pgcheckpoint.ListOptions{Before: head})
			step("List before", err)
			step("Delete one (renumbers the thread)", cp.Delete(ctx, "t", list[1].ID))
			_, err = cp.Threads(ctx, pgcheckpoint.ThreadsOptions{})
			step("Threads", err)
			// A row written by the TypeScript package (no seq) makes the next put renumber the thread.
			if _, err := admin.ExecContext(ctx, `INSERT INTO `+tableIn(schema)+` (thread_id, checkpoint_id, snapshot, version, size_bytes)
				VALUES ('t', $1, '{}', 0, 2)`, uuid.Must(uuid.NewV7()).String()); err != nil {
				t.Fatal(err)
			}
			_, err = cp.Put(ctx, "t", []byte(`{}`))
			step("Put after a TypeScript row (renumber)", err)
			if _, err := admin.ExecContext(ctx, `UPDATE `+tableIn(schema)+` SET created_at = now() - interval '2 days'`); err != nil {
				t.Fatal(err)
			}
			res, err := cp.Prune(ctx, pgcheckpoint.PruneOptions{OlderThan: 24 * time.Hour})
			step("Prune", err)
			if res.Deleted == 0 {
				t.Fatalf("Prune deleted nothing")
			}
			step("Delete a thread", cp.DeleteThread(ctx, "t"))
			checkDenseSeq(t, admin, schema, "fresh")

			// EnsureSchema names the privilege it lacks, step by step as the role gets more.
			var dbName string
			if err := admin.QueryRowContext(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
				t.Fatal(err)
			}
			// With nothing missing it runs no DDL, so it needs no privilege at all (issue 10, defect 9: it
			// used to demand CREATE on the database for a schema that existed).
			if err := cp.EnsureSchema(ctx); err != nil {
				t.Fatalf("EnsureSchema with nothing missing, as a role without CREATE: %v", err)
			}
			if _, err := admin.ExecContext(ctx, `DROP INDEX "`+schema+`"."ziro_checkpoints_unnumbered"`); err != nil {
				t.Fatal(err)
			}
			_ = dbName
			for _, st := range []struct{ grant, want string }{
				{"", `the CREATE privilege on schema "` + schema + `"`},
				{`GRANT CREATE ON SCHEMA "` + schema + `" TO ` + role, "ownership of table " + tableIn(schema)},
			} {
				if st.grant != "" {
					if _, err := admin.ExecContext(ctx, st.grant); err != nil {
						t.Fatal(err)
					}
				}
				err = cp.EnsureSchema(ctx)
				if !errors.Is(err, pgcheckpoint.ErrPermission) || !strings.Contains(err.Error(), st.want) {
					t.Fatalf("EnsureSchema as the role after %q: err = %v, want ErrPermission naming %s", st.grant, err, st.want)
				}
				t.Logf("EnsureSchema: %v", err)
			}
		})
	}
}
