package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/ziroagent/pgcheckpoint"
)

// connectTimeout bounds every new connection unless the DSN or PGCONNECT_TIMEOUT sets one.
const connectTimeout = 5 * time.Second

// session is an open connection pool and the Checkpointer over it.
type session struct {
	db      *sql.DB
	cp      *pgcheckpoint.Checkpointer
	dialect pgcheckpoint.Dialect
	target  string // user@host:port/database, never a password
	driver  string
	table   string // "schema"."table" as the user named it: schema.table

	mu   sync.Mutex
	last pgcheckpoint.Event // the last operation the Checkpointer reported (Observer)
}

// lastEvent returns the last Event the Checkpointer reported: put's trimmed rows, delete's count.
func (s *session) lastEvent() pgcheckpoint.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *session) Close() error { return s.db.Close() }

// dsn is the connection string the flags name: --dsn, else $DATABASE_URL, else "" (the driver applies
// the libpq environment variables and defaults).
func (cf connFlags) resolvedDSN() string {
	if cf.dsn != "" {
		return cf.dsn
	}
	return os.Getenv("DATABASE_URL")
}

// dialectFlag returns the dialect --dialect names; nil means auto.
func (cf connFlags) dialectFlag() (pgcheckpoint.Dialect, error) {
	if cf.dialect == "auto" || cf.dialect == "" {
		return nil, nil
	}
	d, err := pgcheckpoint.ParseDialect(cf.dialect)
	if err != nil {
		return nil, usageErrorf("--dialect must be auto, postgres or cockroach, got %q", cf.dialect)
	}
	return d, nil
}

// options are the Checkpointer options the flags name.
func (cf connFlags) options(d pgcheckpoint.Dialect) pgcheckpoint.Options {
	storage, _ := pgcheckpoint.ParseStorage(cf.storage) // checked by parse
	return pgcheckpoint.Options{Dialect: d, Schema: cf.schema, Table: cf.table, MaxCheckpointsPerThread: cf.maxPerThread,
		MaxBytesPerThread: cf.maxBytesPerThread, MaxSnapshotBytes: cf.maxBytes, Storage: storage, Keys: cf.keys}
}

// checkNames validates --schema and --table without connecting (exit 2 before any network traffic).
func (cf connFlags) checkNames() error {
	storage, _ := pgcheckpoint.ParseStorage(cf.storage)
	_, err := pgcheckpoint.SchemaSQLFor(nil, cf.schema, cf.table, storage)
	return err
}

// openDB parses the DSN for the chosen driver (a malformed one is bad input), adds the default connect
// timeout and returns a pool of at most maxConns connections. Nothing is sent yet.
func (cf connFlags) openDB(maxConns int) (*sql.DB, string, error) {
	dsn := cf.resolvedDSN()
	rememberSecrets(dsn)
	if unencodedAt(dsn) {
		// pgx would take the text after the first @ as the host, and print it: refuse before parsing.
		return nil, "", usageErrorf("invalid connection string: the user or password in the URL holds an unencoded @: write it as %%40")
	}
	var (
		db     *sql.DB
		target string
	)
	switch cf.driver {
	case "pgx":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, "", badDSN(dsn, err)
		}
		rememberSecrets("password=" + cfg.Password)
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = connectTimeout
		}
		// On an interrupt (ctx cancelled) ask the server to cancel the running statement, as lib/pq
		// does, instead of only dropping the connection: a statement waiting for a lock would otherwise
		// run on, and commit, after the CLI said what it had done.
		cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: connectTimeout}
		}
		target = describeTarget(cfg.User, cfg.Host, fmt.Sprint(cfg.Port), cfg.Database)
		db = stdlib.OpenDB(*cfg)
	case "pq":
		cfg, err := pq.NewConfig(dsn)
		if err != nil {
			return nil, "", badDSN(dsn, err)
		}
		rememberSecrets("password=" + cfg.Password)
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = connectTimeout
		}
		target = describeTarget(cfg.User, cfg.Host, fmt.Sprint(cfg.Port), cfg.Database)
		c, err := pq.NewConnectorConfig(cfg)
		if err != nil {
			return nil, "", usageErrorf("invalid connection string: %v", err)
		}
		db = sql.OpenDB(c)
	default:
		return nil, "", usageErrorf("--driver must be pgx or pq (or postgres, lib/pq's name), got %q", cf.driver)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, target, nil
}

// badDSN explains a connection string the driver cannot parse; with no --dsn and no $DATABASE_URL the
// settings came from the PG* environment (a PGSERVICE without a service file, say), so it says that.
func badDSN(dsn string, err error) error {
	if dsn == "" {
		var env []string
		for _, k := range []string{"PGSERVICE", "PGSERVICEFILE", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE"} {
			if v := os.Getenv(k); v != "" {
				env = append(env, k+"="+v)
			}
		}
		return usageErrorf("invalid connection settings from the environment (no --dsn, no $DATABASE_URL; %s): %v", strings.Join(env, " "), err)
	}
	return usageErrorf("invalid connection string: %v", err)
}

func describeTarget(user, host, port, database string) string {
	if database == "" {
		database = user
	}
	return fmt.Sprintf("%s@%s:%s/%s", user, host, port, database)
}

// connect opens a pool, checks that the server answers (asking it for its dialect when --dialect is
// auto) and builds the Checkpointer. An unreachable server is a dbError naming the target.
func (cf connFlags) connect(ctx context.Context, maxConns int) (*session, error) {
	d, err := cf.dialectFlag()
	if err != nil {
		return nil, err
	}
	if err := cf.checkNames(); err != nil {
		return nil, err
	}
	db, target, err := cf.openDB(maxConns)
	if err != nil {
		return nil, err
	}
	s := &session{db: db, target: target, driver: cf.driver, table: cf.schema + "." + cf.table}
	if h, ok := ctx.Value(targetKey{}).(*targetHolder); ok {
		h.set(target)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout+time.Second)
	defer cancel()
	if d == nil {
		d, err = pgcheckpoint.DetectDialect(pctx, db)
	} else {
		err = db.PingContext(pctx)
	}
	if err != nil {
		db.Close()
		return nil, unreachable(target, err)
	}
	s.dialect = d
	opts := cf.options(d)
	opts.Observer = pgcheckpoint.ObserverFunc(func(_ context.Context, ev pgcheckpoint.Event) {
		s.mu.Lock()
		s.last = ev
		s.mu.Unlock()
	})
	s.cp, err = pgcheckpoint.New(db, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// targetKey carries a *targetHolder in the context run gives a command: connect records where it
// connected, so that report can name the database in messages such as "the table does not exist".
type targetKey struct{}

type targetHolder struct {
	mu     sync.Mutex
	target string
}

func (h *targetHolder) set(t string) { h.mu.Lock(); h.target = t; h.mu.Unlock() }
func (h *targetHolder) get() string  { h.mu.Lock(); defer h.mu.Unlock(); return h.target }

// unreachable explains a failed first contact with the server in one short line.
func unreachable(target string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &dbError{msg: fmt.Sprintf("cannot reach the database at %s: %v (check --dsn, $DATABASE_URL or the PG* variables)", target, cause(err)), err: err}
}

// cause picks the informative part of a connection error: the network error or the server's error,
// without the layers the drivers wrap around them.
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return pe.(error)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", connectTimeout)
	}
	return err
}

// secrets holds every password seen in a connection string or the environment, so that redact can
// remove them from any message, whatever the drivers put in their errors.
var secrets struct {
	sync.Mutex
	values []string
}

var (
	// urlPassword matches user:password@ up to the last @ of the word, so that a password holding an
	// unencoded @ (or /) is redacted whole; what follows a later @ is redacted too, which is safe.
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*):(\S*)@`)
	kvPassword  = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
)

func rememberSecrets(dsn string) {
	var found []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			found = append(found, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	// Also the password as urlPassword sees it, and its pieces between unencoded @s, which a driver
	// may print apart (as part of a host name).
	for _, m := range urlPassword.FindAllStringSubmatch(dsn, -1) {
		found = append(found, m[2])
		found = append(found, strings.Split(m[2], "@")...)
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		found = append(found, strings.Trim(m[2], "'"))
	}
	if p := os.Getenv("PGPASSWORD"); p != "" {
		found = append(found, p)
	}
	secrets.Lock()
	defer secrets.Unlock()
	for _, p := range found {
		if len(p) >= 3 {
			secrets.values = append(secrets.values, p)
		}
	}
}

// unencodedAt reports a connection URL whose authority (the text between :// and the first /, ? or #)
// holds more than one @: a user or password with an unencoded @.
func unencodedAt(dsn string) bool {
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return false
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	return strings.Count(rest, "@") > 1
}

// redact removes passwords from a message: user:password@ in URLs, password=... pairs, and every
// password seen by rememberSecrets.
func redact(msg string) string {
	msg = urlPassword.ReplaceAllString(msg, "$1:xxxxx@")
	msg = kvPassword.ReplaceAllString(msg, "${1}xxxxx")
	secrets.Lock()
	defer secrets.Unlock()
	for _, p := range secrets.values {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}
