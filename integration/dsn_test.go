package integration

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// withParam returns dsn with a connection parameter set, for URL DSNs (postgres://...) and key=value ones.
func withParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse DSN: %v", err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "='" + strings.ReplaceAll(value, "'", `\'`) + "'"
}

// withUser returns dsn connecting as another role (no password: the test servers trust local clients).
func withUser(t testing.TB, dsn, user string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse DSN: %v", err)
		}
		u.User = url.User(user)
		return u.String()
	}
	return withParam(t, dsn, "user", user)
}

// withHostPort returns dsn pointing at another server on 127.0.0.1.
func withHostPort(t testing.TB, dsn string, port int, dbname string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("the tests that start their own server or pooler need a URL DSN, got %q", dsn)
	}
	u.Host = "127.0.0.1:" + strconv.Itoa(port)
	u.Path = "/" + dbname
	return u.String()
}
