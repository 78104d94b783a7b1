package integration

// Helpers of the regression tests for issue 10 (regress_test.go): a TCP proxy that cuts a connection at a
// chosen point of the PostgreSQL wire protocol, a driver wrapper that holds COMMIT until the test lets it
// go, a private database per test (so pg_stat_database counts only that test's deadlocks), and UUIDv7 ids
// at a chosen time.

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// cutProxy forwards TCP connections to a PostgreSQL server and, once armed, cuts the first connection
// that runs a statement whose text holds the trigger: either right after the client's message that makes
// the server run it was forwarded (afterReply false: the server may or may not have run it), or once the
// server's whole reply to it (up to ReadyForQuery) has arrived at the proxy, without forwarding any of
// that reply (afterReply true: the server ran the statement, and committed it when it commits on its own
// or is COMMIT; the client hears only that the connection broke).
//
// It understands just enough of the protocol: every message after the startup message is a type byte and
// a length. A simple query ('Q') holding the trigger runs at once; in the extended protocol a Parse ('P')
// holding it is followed by Execute ('E') and Sync ('S'), and the statement commits at the Sync. The
// test DSNs use sslmode=disable, so no SSLRequest comes first.
type cutProxy struct {
	ln     net.Listener
	target string

	mu         sync.Mutex
	match      func(query string) bool // nil: not armed
	skip       int                     // matching statements to let through first
	afterReply bool
	cuts       chan struct{} // one value per cut
	conns      []net.Conn
}

func startCutProxy(t testing.TB, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, cuts: make(chan struct{}, 16)}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// dsn is base pointing at the proxy.
func (p *cutProxy) dsn(t testing.TB, base string) string {
	return withHostPort(t, base, p.ln.Addr().(*net.TCPAddr).Port, dbName(t, base))
}

// arm makes the connection that runs the statement matching match, after skip earlier matching ones, be
// cut.
func (p *cutProxy) arm(match func(query string) bool, skip int, afterReply bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match, p.skip, p.afterReply = match, skip, afterReply
}

// isCommit matches COMMIT (lib/pq) and commit (pgx), not "begin isolation level read committed".
func isCommit(q string) bool { return strings.EqualFold(strings.TrimSpace(q), "commit") }

// startsWith matches statements that start with prefix.
func startsWith(prefix string) func(string) bool {
	return func(q string) bool { return strings.HasPrefix(strings.TrimSpace(q), prefix) }
}

// waitCut waits for a cut, failing the test after 30 seconds.
func (p *cutProxy) waitCut(t testing.TB) {
	t.Helper()
	select {
	case <-p.cuts:
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy never cut a connection: the trigger statement was not seen")
	}
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

// proxied is one client connection and its server connection.
type proxied struct {
	p              *cutProxy
	client, server net.Conn
	claimed        bool // this connection took the armed cut (client pump only)
	parsed, execd  bool // extended protocol: Parse holding the trigger seen, then Execute
	afterReply     bool
	running        atomic.Bool // the trigger statement was sent to the server
	once           sync.Once
}

func (p *cutProxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	c := &proxied{p: p, client: client, server: server}
	go c.fromServer()
	c.fromClient()
}

// cut closes both sides and reports the cut.
func (c *proxied) cut() {
	c.once.Do(func() {
		c.client.Close()
		c.server.Close()
		c.p.cuts <- struct{}{}
	})
}

func (c *proxied) close() {
	c.client.Close()
	c.server.Close()
}

// readMsg reads one message: typed (type byte, then length) or, for the startup message, untyped.
func readMsg(r io.Reader, typed bool) (typ byte, msg []byte, err error) {
	var hdr [5]byte
	h := hdr[:4]
	if typed {
		h = hdr[:5]
	}
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[len(h)-4:])
	if n < 4 || n > 1<<30 {
		return 0, nil, io.ErrUnexpectedEOF
	}
	msg = make([]byte, len(h)+int(n)-4)
	copy(msg, h)
	if _, err := io.ReadFull(r, msg[len(h):]); err != nil {
		return 0, nil, err
	}
	if typed {
		typ = hdr[0]
	}
	return typ, msg, nil
}

func (c *proxied) fromClient() {
	defer c.close()
	_, msg, err := readMsg(c.client, false)
	if err != nil {
		return
	}
	if _, err := c.server.Write(msg); err != nil {
		return
	}
	for {
		typ, msg, err := readMsg(c.client, true)
		if err != nil {
			return
		}
		sent := false
		switch typ {
		case 'Q', 'P':
			if !c.claimed && c.matches(msg) {
				c.claimed = true
				if typ == 'Q' {
					sent = true
				} else {
					c.parsed = true
				}
			}
		case 'E':
			c.execd = c.parsed
		case 'S':
			if c.parsed && c.execd {
				sent = true
			}
		}
		if sent {
			c.parsed, c.execd = false, false
			c.running.Store(true)
		}
		if _, err := c.server.Write(msg); err != nil {
			return
		}
		if sent && !c.afterReply {
			c.cut()
			return
		}
	}
}

// matches claims the armed cut when msg (a Query or Parse message) runs the statement it waits for.
func (c *proxied) matches(msg []byte) bool {
	body := msg[5:]
	if msg[0] == 'P' { // statement name, then the query
		_, body, _ = bytes.Cut(body, []byte{0})
	}
	query, _, _ := bytes.Cut(body, []byte{0})
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	if c.p.match == nil || !c.p.match(string(query)) {
		return false
	}
	if c.p.skip > 0 {
		c.p.skip--
		return false
	}
	c.p.match = nil
	c.afterReply = c.p.afterReply
	return true
}

func (c *proxied) fromServer() {
	defer c.close()
	for {
		typ, msg, err := readMsg(c.server, true)
		if err != nil {
			return
		}
		if c.running.Load() {
			// The reply to the trigger statement: keep it from the client, cut at its end.
			if typ == 'Z' {
				c.cut()
				return
			}
			continue
		}
		if _, err := c.client.Write(msg); err != nil {
			return
		}
	}
}

// commitGate holds COMMIT of a pool's transactions while armed: the transaction did all its work and
// holds its locks, and the test decides when it commits.
type commitGate struct {
	mu      sync.Mutex
	armed   bool
	reached chan struct{} // receives when a COMMIT is held
	release chan struct{} // closed to let it go
}

func newCommitGate() *commitGate {
	return &commitGate{reached: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *commitGate) arm() { g.mu.Lock(); g.armed = true; g.mu.Unlock() }

// hold blocks a COMMIT while armed (once).
func (g *commitGate) hold() {
	g.mu.Lock()
	armed := g.armed
	g.armed = false
	g.mu.Unlock()
	if armed {
		g.reached <- struct{}{}
		<-g.release
	}
}

// openGated returns a bounded pool on dsn through driver fd whose COMMITs pass g.
func (fd faultDriver) openGated(t testing.TB, dsn string, g *commitGate) *sql.DB {
	t.Helper()
	base, err := fd.connect(dsn)
	if err != nil {
		t.Fatalf("%s connector: %v", fd.name, err)
	}
	db := sql.OpenDB(&gateConnector{faultConnector{base: base, plan: &faultPlan{}, state: fd.state}, g})
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	t.Cleanup(func() { db.Close() })
	return db
}

type gateConnector struct {
	faultConnector
	g *commitGate
}

func (c *gateConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.faultConnector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &gateConn{faultConn: conn.(*faultConn), g: c.g}, nil
}

type gateConn struct {
	*faultConn
	g *commitGate
}

func (gc *gateConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := gc.faultConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &gateTx{Tx: tx, g: gc.g}, nil
}

type gateTx struct {
	driver.Tx
	g *commitGate
}

func (tx *gateTx) Commit() error {
	tx.g.hold()
	return tx.Tx.Commit()
}

// faultDriverFor is the wrapped driver of the target's database/sql driver.
func faultDriverFor(tg target) faultDriver {
	if tg.driver == "pgx" {
		return faultDrivers[0]
	}
	return faultDrivers[1]
}

// privateDatabase creates a database of the test's own on the target's server, dropped at cleanup, and
// returns the target pointing at it and a function reading its deadlock count. pg_stat_database counts
// deadlocks per database, so other tests on the shared server cannot disturb the count.
func privateDatabase(t *testing.T, tg target) (target, func() int64) {
	t.Helper()
	admin := tg.open(t)
	admin.SetMaxOpenConns(1)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pgct_db_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(testCtx(t), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(tg.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	tg.dsn = u.String()
	deadlocks := func() int64 {
		t.Helper()
		// A backend reports its statistics when it exits at the latest: wait until none is left.
		waitFor(t, "the private database's backends to exit", func() bool {
			var n int
			if err := admin.QueryRowContext(testCtx(t), `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
		conn, err := admin.Conn(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(testCtx(t), `SELECT pg_stat_clear_snapshot()`); err != nil {
			t.Fatal(err)
		}
		var n sql.NullInt64
		if err := conn.QueryRowContext(testCtx(t), `SELECT deadlocks FROM pg_stat_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n.Int64
	}
	return tg, deadlocks
}

// idAt is a UUIDv7 whose timestamp is ts (with fixed random bits), as another writer would make it.
func idAt(ts time.Time) string {
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[0:8], uint64(ts.UnixMilli())<<16|0x7000|0x123)
	binary.BigEndian.PutUint64(u[8:16], 0x8000000000000000|0x0123456789abcdef)
	return u.String()
}

// idTime is the timestamp inside a UUIDv7 id.
func idTime(t testing.TB, id string) time.Time {
	t.Helper()
	u, err := uuid.Parse(id)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(u[0:8]) >> 16))
}

// appName is a unique application_name, so pg_stat_activity finds the test's own backends.
func appName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// waitLockWait waits until a backend of application app waits for a lock.
func waitLockWait(t testing.TB, db *sql.DB, app string) {
	t.Helper()
	waitFor(t, "a backend of "+app+" to wait for a lock", func() bool {
		var n int
		if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
}

// markerCount counts the thread's rows whose snapshot holds "marker": m.
func markerCount(t testing.TB, db *sql.DB, schema, thread, m string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(testCtx(t), `SELECT count(*) FROM `+tableIn(schema)+
		` WHERE thread_id = $1 AND snapshot->>'marker' = $2`, thread, m).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func marked(m string) []byte { return []byte(`{"marker": ` + strconv.Quote(m) + `}`) }
