package pgcheckpoint

import (
	"context"
	"strings"
)

// DetectDialect asks the server what it is (SELECT version()) and returns CockroachDB when it says
// "CockroachDB", else PostgreSQL.
func DetectDialect(ctx context.Context, db DBTX) (Dialect, error) {
	var v string
	if err := db.QueryRowContext(ctx, versionSQL).Scan(&v); err != nil {
		return nil, fail(OpDetectDialect, "", "", err)
	}
	if strings.Contains(v, "CockroachDB") {
		return CockroachDB, nil
	}
	return PostgreSQL, nil
}
