package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// TestTTLExpressionOnPostgres proves on PostgreSQL what it can of CockroachDB's row-level TTL statement
// (TTLSQL): the ttl_expiration_expression literal unquotes to an expression over created_at that is
// created_at + the TTL, the same in every session time zone, and immutable (PostgreSQL accepts it in an
// index). The ALTER TABLE ... SET (ttl_...) itself only a cluster accepts.
func TestTTLExpressionOnPostgres(t *testing.T) {
	tg := postgresTargets(t)[0]
	db := tg.open(t)
	schema := newSchema(t, db)
	cp := tg.newCheckpointer(t, db, pgcheckpoint.Options{Schema: schema})
	ctx := testCtx(t)
	if _, err := cp.Put(ctx, "t", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	stmt, err := pgcheckpoint.TTLSQL(pgcheckpoint.CockroachDB, schema, "", pgcheckpoint.TTLOptions{After: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const key, next = "ttl_expiration_expression = ", ",\n    ttl_job_cron"
	i, j := strings.Index(stmt, key), strings.Index(stmt, next)
	if i < 0 || j < i {
		t.Fatalf("no expression in:\n%s", stmt)
	}
	var expr string
	if err := db.QueryRowContext(ctx, `SELECT `+stmt[i+len(key):j]).Scan(&expr); err != nil {
		t.Fatalf("the expression literal: %v", err)
	}
	table := `"` + schema + `"."ziro_checkpoints"`
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, zone := range []string{"UTC", "America/New_York", "Asia/Kolkata"} {
		if _, err := conn.ExecContext(ctx, `SET TIME ZONE '`+zone+`'`); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if err := conn.QueryRowContext(ctx, `SELECT `+expr+` = created_at + INTERVAL '2592000 seconds' FROM `+table).Scan(&ok); err != nil || !ok {
			t.Fatalf("time zone %s: %s is not created_at + 720h (%v)", zone, expr, err)
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE INDEX ttl_probe ON `+table+` ((`+expr+`))`); err != nil {
		t.Fatalf("PostgreSQL does not take %s as immutable: %v", expr, err)
	}
}
