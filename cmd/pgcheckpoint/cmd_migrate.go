package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdMigrate creates what is missing, or with --print writes the DDL without connecting.
func cmdMigrate(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "migrate")
	print := f.Bool("print", false, "write the DDL for --dialect (auto prints PostgreSQL) and connect to nothing")
	ttl := f.String("ttl", "", "with --print --dialect cockroach: also the row-level TTL expiring checkpoints `DURATION` after created_at (720h, 30d)")
	ttlCron := f.String("ttl-cron", "", "with --ttl: when the TTL job runs (ttl_job_cron; default @hourly)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if (*ttl != "" || *ttlCron != "") && !*print {
		return usageErrorf("migrate: --ttl and --ttl-cron go with --print --dialect cockroach: apply the printed statement on the cluster (see docs/cockroachdb.md)")
	}
	if *print {
		d, err := f.conn.dialectFlag()
		if err != nil {
			return err
		}
		storage, _ := pgcheckpoint.ParseStorage(f.conn.storage)
		ddl, err := pgcheckpoint.SchemaSQLFor(d, f.conn.schema, f.conn.table, storage)
		if err != nil {
			return err
		}
		if f.conn.maxPerThread != 0 || f.conn.maxBytesPerThread != 0 {
			// The statement sets the whole policy: without --max-per-thread it records the default cap.
			r := pgcheckpoint.Retention{MaxCheckpointsPerThread: f.conn.maxPerThread, MaxBytesPerThread: f.conn.maxBytesPerThread}
			if r.MaxCheckpointsPerThread == 0 {
				r.MaxCheckpointsPerThread = pgcheckpoint.DefaultMaxCheckpointsPerThread
			}
			set, err := pgcheckpoint.RetentionSQL(d, f.conn.schema, f.conn.table, r)
			if err != nil {
				return err
			}
			ddl += "\n" + set
		}
		if *ttl != "" || *ttlCron != "" {
			ttlSQL, err := migrateTTL(d, f.conn, *ttl, *ttlCron)
			if err != nil {
				return err
			}
			ddl += "\n" + ttlSQL + ";\n"
		}
		_, err = fmt.Fprint(e.stdout, ddl)
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	// The catalog reads only describe the change; if one fails (a catalog a dialect lacks), migrate
	// still migrates and says "ready" without saying what changed.
	before, berr := schemaState(ctx, s, f.conn)
	err = s.cp.EnsureSchema(ctx)
	var was pgcheckpoint.Retention
	changed := false
	if errors.Is(err, pgcheckpoint.ErrRetentionMismatch) {
		// --max-per-thread or --max-bytes-per-thread names another policy than the table's: migrate is
		// where a policy changes. A flag left 0 keeps that part of the table's policy.
		if was, err = s.cp.Retention(ctx); err == nil {
			r := was
			if f.conn.maxPerThread != 0 {
				r.MaxCheckpointsPerThread = f.conn.maxPerThread
			}
			if f.conn.maxBytesPerThread != 0 {
				r.MaxBytesPerThread = max(f.conn.maxBytesPerThread, 0)
			}
			err, changed = s.cp.SetRetention(ctx, r), true
		}
	}
	if err != nil {
		return err
	}
	policy, err := s.cp.Retention(ctx)
	if err != nil {
		return err
	}
	after, aerr := schemaState(ctx, s, f.conn)
	change := "no change"
	switch {
	case berr != nil || aerr != nil:
		change = "done"
	case before.columns == 0:
		change = "created"
	case before != after:
		change = "upgraded"
	}
	if changed {
		change = fmt.Sprintf("retention changed from %s to %s", was, policy)
	}
	fmt.Fprintf(e.stdout, "table %s.%s is ready: %s (%s, %s); it keeps %s\n", f.conn.schema, f.conn.table, change,
		s.dialect.Name(), s.target, policy)
	return nil
}

// catalogState is what migrate can change: the table's columns and its indexes.
type catalogState struct{ columns, indexes int }

// schemaState reads the table's column and index counts from the catalog (0, 0: no table).
func schemaState(ctx context.Context, s *session, cf connFlags) (catalogState, error) {
	var st catalogState
	err := s.db.QueryRowContext(ctx, `SELECT
    (SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2),
    (SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2)`, cf.schema, cf.table).Scan(&st.columns, &st.indexes)
	if err != nil {
		return st, pgcheckpointErr("migrate", err)
	}
	return st, nil
}

// migrateTTL is the row-level TTL statement of migrate --print --ttl: CockroachDB only.
func migrateTTL(d pgcheckpoint.Dialect, cf connFlags, ttl, cron string) (string, error) {
	if d == nil || d.Name() != pgcheckpoint.DialectCockroach { // nil: --dialect auto, which prints PostgreSQL
		return "", usageErrorf("migrate: --ttl is CockroachDB's row-level TTL: add --dialect cockroach (on PostgreSQL run pgcheckpoint prune)")
	}
	if ttl == "" {
		return "", usageErrorf("migrate: --ttl-cron needs --ttl")
	}
	after, err := parseAge(ttl)
	if err != nil {
		return "", usageErrorf("migrate: --ttl %q is not a duration (720h, 30d, 1w)", ttl)
	}
	return pgcheckpoint.TTLSQL(d, cf.schema, cf.table, pgcheckpoint.TTLOptions{After: after, Cron: cron})
}
