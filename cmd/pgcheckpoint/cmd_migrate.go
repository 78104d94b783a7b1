package main

import (
	"context"
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
		_, err = fmt.Fprint(e.stdout, ddl)
		return err
	}
	s, err := f.conn.connect(ctx, 2)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.cp.EnsureSchema(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "table %s.%s is ready (%s, %s)\n", f.conn.schema, f.conn.table, s.dialect.Name(), s.target)
	return nil
}
