package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointtest"
)

// TestPgBouncer runs the contract suite through PgBouncer in transaction-pooling mode, in front of the
// shared server, for every driver x dialect, with the DSN settings docs/operations.md gives: pgx in its
// exec or simple-protocol mode (PgBouncer 1.18 keeps no prepared statements in transaction mode), lib/pq
// with binary_parameters=yes. Plain lib/pq is not safe there: it parses an unnamed statement and binds it
// in a second round trip, which PgBouncer may send to another server connection (seen here: "pq: unnamed
// prepared statement does not exist (26000)" under the suite's concurrent writers); binary_parameters=yes
// sends parse, bind and execute in one round trip.
// PgBouncer is started by the test as the postgres OS user on a port of its own and killed at cleanup.
func TestPgBouncer(t *testing.T) {
	t.Parallel()
	port := startPgBouncer(t)
	for _, tg := range postgresTargets(t) {
		modes := map[string]string{"pgx": "default_query_exec_mode", "postgres": "binary_parameters"}
		values := map[string][]string{"pgx": {"exec", "simple_protocol"}, "postgres": {"yes"}}
		for _, v := range values[tg.driver] {
			name := tg.name
			tg := tg
			tg.dsn = withHostPort(t, tg.dsn, port, dbName(t, tg.dsn))
			name += "/" + modes[tg.driver] + "=" + v
			tg.dsn = withParam(t, tg.dsn, modes[tg.driver], v)
			t.Run(name, func(t *testing.T) {
				db := tg.open(t)
				pgcheckpointtest.Run(t, func(t *testing.T, opts pgcheckpoint.Options) pgcheckpoint.Store {
					return tg.newCheckpointer(t, db, opts)
				})
			})
		}
	}
}

// dbName is the database a URL DSN names.
func dbName(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || len(u.Path) < 2 {
		t.Fatalf("the PgBouncer test needs a URL DSN naming the database")
	}
	return u.Path[1:]
}

// startPgBouncer starts PgBouncer (transaction pooling, at most 4 server connections) in front of the
// server of PGCHECKPOINT_TEST_DSN and returns its port once it answers.
func startPgBouncer(t *testing.T) int {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/pgbouncer"); err != nil {
			needTool(t, "pgbouncer is not installed: apt-get install -y pgbouncer")
		}
	}
	base, err := url.Parse(postgresDSN(t))
	if err != nil || base.Scheme == "" {
		t.Fatalf("the PgBouncer test needs a URL DSN")
	}
	dir, err := os.MkdirTemp("", "pgcheckpoint-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 { // PgBouncer refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			needTool(t, "running as root and there is no postgres OS user to run pgbouncer as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	host, port := base.Hostname(), base.Port()
	if port == "" {
		port = "5432"
	}
	user := base.User.Username()
	password, _ := base.User.Password()
	server := fmt.Sprintf("host=%s port=%s user=%s", host, port, user)
	if password != "" {
		server += " password=" + password
	}
	listen := freePort(t)
	ini := fmt.Sprintf(`[databases]
* = %s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
`, server, listen, filepath.Join(dir, "userlist.txt"))
	users := fmt.Sprintf("%q %q\n", user, password)
	for name, content := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": users} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	logFile, err := os.Create(filepath.Join(dir, "pgbouncer.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pgbouncer: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // our own child, by pid
		<-exited
		logFile.Close()
	})

	dsn := withHostPort(t, postgresDSN(t), listen, dbName(t, postgresDSN(t)))
	db, err := sql.Open("pgx", withParam(t, dsn, "default_query_exec_mode", "simple_protocol"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return listen
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			exited <- werr
			t.Fatalf("pgbouncer exited: %v\n%s", werr, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer did not answer within 30s: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
