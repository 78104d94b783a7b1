package integration

// The suite against a real CockroachDB cluster. Everything else about the CockroachDB dialect that runs
// here (sqlmock sequences, fault injection, the conformance suite with the CockroachDB dialect on
// PostgreSQL) replays OUR READING of CockroachDB's documentation; this suite is where a cluster answers
// for itself. It needs PGCHECKPOINT_COCKROACH_DSN, e.g. after
//
//	cockroach start-single-node --insecure --listen-addr=localhost:26257 --store=type=mem,size=1GiB
//	PGCHECKPOINT_COCKROACH_DSN='postgresql://root@localhost:26257/defaultdb?sslmode=disable' scripts/test
//
// CI has no cluster, so TestRealCockroach is the one test allowed to skip there (.ci/run says so
// plainly). TestCockroachSuiteRehearsal runs the same code on PostgreSQL in every CI run, leaving out the
// checks only a cluster can pass, so that the suite itself cannot rot unseen. docs/cockroachdb.md lists
// what only a cluster can confirm.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// cockroachDSNEnv names the cluster for TestRealCockroach.
const cockroachDSNEnv = "PGCHECKPOINT_COCKROACH_DSN"

// TestRealCockroach runs the contract suite, retention, fencing, concurrency, schema creation and the
// fault-injected retry paths against a real CockroachDB cluster, with both drivers.
func TestRealCockroach(t *testing.T) {
	dsn := os.Getenv(cockroachDSNEnv)
	if dsn == "" {
		t.Skip(cockroachDSNEnv + " is not set: no CockroachDB cluster to test against (CI has none). " +
			"Start one with `cockroach start-single-node --insecure` and set it, see docs/cockroachdb.md")
	}
	runCockroachSuite(t, dsn, true)
}

// TestCockroachSuiteRehearsal runs TestRealCockroach's code on PostgreSQL with the CockroachDB dialect,
// without the checks that only a cluster can pass (engine detection, 0A000) and without the contract
// suite, which TestConformance already runs for this dialect.
func TestCockroachSuiteRehearsal(t *testing.T) {
	runCockroachSuite(t, postgresDSN(t), false)
}

func runCockroachSuite(t *testing.T, dsn string, cluster bool) {
	for _, fd := range faultDrivers {
		tg := target{name: fd.name + "/cockroach", driver: map[string]string{"pgx": "pgx", "pq": "postgres"}[fd.name], dsn: dsn, dialect: pgcheckpoint.CockroachDB}
		t.Run(fd.name, func(t *testing.T) {
			t.Parallel()
			db := tg.open(t)

			t.Run("DetectDialect", func(t *testing.T) {
				d, err := pgcheckpoint.DetectDialect(testCtx(t), db)
				want := pgcheckpoint.PostgreSQL
				if cluster {
					want = pgcheckpoint.CockroachDB
				}
				if err != nil {
					t.Fatalf("DetectDialect: %v", err)
				}
				if d != want {
					t.Fatalf("DetectDialect = %s, want %s", d.Name(), want.Name())
				}
			})

			if cluster {
				t.Run("Conformance", func(t *testing.T) {
					pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
						return tg.newCheckpointer(t, db, opts)
					})
				})

				// The documented difference the whole dialect is built around: one statement may not
				// INSERT and DELETE the same table. If a cluster ever accepts PostgreSQL's put, this
				// says so (and the split could be revisited).
				t.Run("PostgresPutRejectedWith0A000", func(t *testing.T) {
					schema := newSchema(t, db)
					tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema}) // creates the table
					pg, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: pgcheckpoint.PostgreSQL, Schema: schema})
					if err != nil {
						t.Fatal(err)
					}
					_, err = pg.Put(testCtx(t), "one-statement", []byte(`{"a": 1}`))
					if pgcheckpoint.SQLState(err) != "0A000" {
						t.Fatalf("PostgreSQL's insert+trim statement on CockroachDB: %v, want SQLSTATE 0A000", err)
					}
				})
			}

			t.Run("PublicSchemaAndDefaultLimit", func(t *testing.T) {
				table := publicTable(t, db)
				cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB, Table: table, MaxCheckpointsPerThread: 3})
				if err != nil {
					t.Fatal(err)
				}
				if err := cp.EnsureSchema(testCtx(t)); err != nil {
					t.Fatalf("EnsureSchema in public (no CREATE SCHEMA): %v", err)
				}
				if err := cp.EnsureSchema(testCtx(t)); err != nil {
					t.Fatalf("EnsureSchema again: %v", err)
				}
				// The default limit is 1 MiB: just under it is stored and read back, just over it is refused.
				pad := (1 << 20) - len(`{"version": 1, "pad": ""}`)
				big := []byte(`{"version": 1, "pad": "` + strings.Repeat("x", pad) + `"}`)
				id, err := cp.Put(testCtx(t), "big", big)
				if err != nil {
					t.Fatalf("a 1 MiB snapshot: %v", err)
				}
				got, err := cp.Get(testCtx(t), "big", id)
				if err != nil || got.SizeBytes != 1<<20 || got.Version != 1 {
					t.Fatalf("Get of the 1 MiB snapshot = %d bytes, version %d, %v", got.SizeBytes, got.Version, err)
				}
				if _, err := cp.Put(testCtx(t), "big", append(big[:len(big)-2:len(big)-2], `x"}`...)); !errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge) {
					t.Fatalf("1 MiB + 1 byte: %v, want ErrSnapshotTooLarge", err)
				}
				for i := range 6 {
					if _, err := cp.Put(testCtx(t), "small", []byte(fmt.Sprintf(`{"i": %d}`, i))); err != nil {
						t.Fatal(err)
					}
				}
				if n := count(t, db, `"public"."`+table+`"`, "small"); n != 3 {
					t.Fatalf("thread holds %d rows, want the cap 3", n)
				}
			})

			// Encryption's DDL (a check constraint, validated at once on an empty table) and state
			// (pg_constraint.convalidated), and the server refusing plaintext (docs/security.md).
			t.Run("Encryption", func(t *testing.T) {
				schema := newSchema(t, db)
				cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema, Keys: testKeys(t, "k1")})
				if s, err := cp.Encryption(testCtx(t)); err != nil || s != pgcheckpoint.EncryptionRequired {
					t.Fatalf("Encryption of a new table made with keys = %v, %v", s, err)
				}
				id, err := cp.Put(testCtx(t), "enc", []byte(`{"secret": 1}`))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := cp.Get(testCtx(t), "enc", id); err != nil || string(got.Snapshot) != `{"secret": 1}` {
					t.Fatalf("Get = %s, %v", got.Snapshot, err)
				}
				keyless, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB, Schema: schema})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := keyless.Put(testCtx(t), "enc", []byte(`{"plain": 1}`)); !errors.Is(err, pgcheckpoint.ErrEncryptionRequired) {
					t.Fatalf("keyless put into an encrypted table: %v, want ErrEncryptionRequired", err)
				}
			})

			t.Run("ConcurrentEnsureSchema", func(t *testing.T) {
				schema := newSchema(t, db)
				var wg sync.WaitGroup
				errs := make(chan error, 4)
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Dialect: pgcheckpoint.CockroachDB, Schema: schema})
						if err == nil {
							err = cp.EnsureSchema(testCtx(t))
						}
						errs <- err
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Errorf("concurrent EnsureSchema: %v", err)
					}
				}
			})

			t.Run("ConcurrentWritersExactRetention", func(t *testing.T) {
				const writers, each, capN = 4, 10, 5
				cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{MaxCheckpointsPerThread: capN, MaxAttempts: 30})
				var wg sync.WaitGroup
				errs := make(chan error, writers*each)
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range each {
							if _, err := cp.Put(testCtx(t), "hot", []byte(fmt.Sprintf(`{"w": %d, "i": %d}`, w, i))); err != nil {
								errs <- err
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Errorf("concurrent put: %v", err)
				}
				list, err := cp.List(testCtx(t), "hot", pgcheckpoint.ListOptions{Limit: -1})
				if err != nil || len(list) != capN {
					t.Fatalf("after %d concurrent puts: %d checkpoints, %v; want the cap %d", writers*each, len(list), err, capN)
				}
			})

			t.Run("FencedRaceOneWinner", func(t *testing.T) {
				cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{MaxCheckpointsPerThread: 3})
				head := ""
				for round := range 5 {
					var wg sync.WaitGroup
					var mu sync.Mutex
					var winners []string
					for w := range 4 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							id, err := putAfter(cp, testCtx(t), "fenced", head, []byte(fmt.Sprintf(`{"round": %d, "w": %d}`, round, w)))
							switch {
							case err == nil:
								mu.Lock()
								winners = append(winners, id)
								mu.Unlock()
							case !errors.Is(err, pgcheckpoint.ErrConflict):
								t.Errorf("round %d: %v, want success or ErrConflict", round, err)
							}
						}()
					}
					wg.Wait()
					if len(winners) != 1 {
						t.Fatalf("round %d on head %q: %d winners %v, want exactly one", round, head, len(winners), winners)
					}
					head = winners[0]
					if got, err := cp.Latest(testCtx(t), "fenced"); err != nil || got.ID != head {
						t.Fatalf("round %d: newest is %q, %v; want the winner %s", round, got.ID, err, head)
					}
				}
			})

			t.Run("FaultInjectedRetries", func(t *testing.T) {
				runFaultScenarios(t, fd, dsn, cluster)
			})
		})
	}
}

// publicTable returns a fresh table name in the public schema; the table is dropped at cleanup.
func publicTable(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pgct_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS "public"."`+name+`"`); err != nil {
			t.Errorf("drop table %s: %v", name, err)
		}
	})
	return name
}
