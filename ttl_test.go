package pgcheckpoint

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTTLSQL(t *testing.T) {
	t.Parallel()
	got, err := TTLSQL(CockroachDB, "", "", TTLOptions{After: 90 * time.Second, Cron: "*/10 * * * *"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`ALTER TABLE "public"."ziro_checkpoints" SET (`, `INTERVAL ''90 seconds''`, `ttl_job_cron = '*/10 * * * *'`} {
		if !strings.Contains(got, want) {
			t.Errorf("TTLSQL lacks %q:\n%s", want, got)
		}
	}
	if got, _ := TTLSQL(CockroachDB, "", "", TTLOptions{After: 48 * time.Hour, Cron: "@daily"}); !strings.Contains(got, `INTERVAL ''48 hours''`) || !strings.Contains(got, `'@daily'`) {
		t.Errorf("TTLSQL(48h, @daily):\n%s", got)
	}
	for _, bad := range []struct {
		d    Dialect
		opts TTLOptions
	}{
		{PostgreSQL, TTLOptions{After: time.Hour}},
		{nil, TTLOptions{After: time.Hour}},
		{CockroachDB, TTLOptions{}},
		{CockroachDB, TTLOptions{After: -time.Hour}},
		{CockroachDB, TTLOptions{After: 1500 * time.Millisecond}},
		{CockroachDB, TTLOptions{After: time.Hour, Cron: "@daily'; DROP TABLE x; --"}},
	} {
		if _, err := TTLSQL(bad.d, "", "", bad.opts); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("TTLSQL(%v, %+v): err = %v, want ErrInvalidOptions", bad.d, bad.opts, err)
		}
	}
	if _, err := TTLSQL(CockroachDB, "bad name", "", TTLOptions{After: time.Hour}); !errors.Is(err, ErrInvalidIdentifier) {
		t.Errorf("TTLSQL with a bad schema: err = %v, want ErrInvalidIdentifier", err)
	}
}
