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
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *print {
		d, err := f.conn.dialectFlag()
		if err != nil {
			return err
		}
		ddl, err := pgcheckpoint.SchemaSQL(d, f.conn.schema, f.conn.table)
		if err != nil {
			return err
		}
		if f.conn.maxPerThread != 0 {
			set, err := pgcheckpoint.RetentionSQL(d, f.conn.schema, f.conn.table, pgcheckpoint.Retention{MaxCheckpointsPerThread: f.conn.maxPerThread})
			if err != nil {
				return err
			}
			ddl += "\n" + set
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
	if errors.Is(err, pgcheckpoint.ErrRetentionMismatch) {
		// --max-per-thread names another cap than the table's: migrate is where a policy changes.
		if was, err = s.cp.Retention(ctx); err == nil {
			err = s.cp.SetRetention(ctx, pgcheckpoint.Retention{MaxCheckpointsPerThread: f.conn.maxPerThread})
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
	if was.MaxCheckpointsPerThread != 0 {
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
