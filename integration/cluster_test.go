package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// privateCluster is a throwaway PostgreSQL server of one test: its own directory and port, started and
// stopped by the test, removed at cleanup even when the test fails. The tests that stop a server use one,
// never the shared server.
type privateCluster struct {
	t    testing.TB
	bin  string // PostgreSQL's bin directory
	dir  string // owned by the postgres OS user when the test runs as root
	port int
	// extra holds server options added to every start ("-c name=value ...").
	extra string
}

// needTool fails the test in CI (CI set) and skips it elsewhere: what CI must run may not silently skip.
func needTool(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (this fails when CI is set)", args...)
}

// startPrivateCluster runs initdb (as the postgres OS user when running as root: initdb refuses root) in
// a temporary directory and starts the server on a free port of 127.0.0.1.
func startPrivateCluster(t testing.TB) *privateCluster {
	t.Helper()
	return startPrivateClusterWith(t, "")
}

// startPrivateClusterWith is startPrivateCluster with extra server options ("-c name=value ...").
func startPrivateClusterWith(t testing.TB, extra string) *privateCluster {
	t.Helper()
	out, err := exec.Command("pg_config", "--bindir").Output()
	bin := strings.TrimSpace(string(out))
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if len(matches) == 0 {
			needTool(t, "no PostgreSQL server binaries (pg_config --bindir: %v): apt-get install postgresql", err)
		}
		bin = filepath.Dir(matches[len(matches)-1])
	}
	dir, err := os.MkdirTemp("", "pgcheckpoint-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &privateCluster{t: t, bin: bin, dir: dir, extra: extra}
	t.Cleanup(func() {
		if c.running() {
			_ = c.pgctl("stop", "-m", "immediate", "-w")
		}
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			needTool(t, "running as root and there is no postgres OS user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.command("initdb", "-D", c.data(), "-U", "root", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.port = freePort(t)
	c.start()
	return c
}

func (c *privateCluster) data() string { return filepath.Join(c.dir, "data") }

// command runs a PostgreSQL program, as the postgres OS user when the test runs as root.
func (c *privateCluster) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd
}

func (c *privateCluster) pgctl(args ...string) error {
	out, err := c.command("pg_ctl", append([]string{"-D", c.data()}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *privateCluster) running() bool { return c.pgctl("status") == nil }

// start starts the server and returns once it accepts connections (pg_ctl -w).
func (c *privateCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c max_connections=30 -c shared_buffers=16MB",
		c.port, c.dir)
	if c.extra != "" {
		opts += " " + c.extra
	}
	if err := c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "server.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("%v\nserver log:\n%s", err, log)
	}
}

// crash stops the server the hard way (pg_ctl stop -m immediate: no checkpoint, crash recovery at the
// next start), as a power cut or an OOM kill of the postmaster would.
func (c *privateCluster) crash() {
	c.t.Helper()
	if err := c.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		c.t.Fatal(err)
	}
}

// dsn is base (a URL DSN) pointed at this cluster, as the superuser root.
func (c *privateCluster) dsn(base string) string {
	return withUser(c.t, withHostPort(c.t, base, c.port, "postgres"), "root")
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeze stops the server's processes (postmaster and backends) with SIGSTOP, as a hung host would
// look: connections are accepted by the kernel but nothing answers. thaw (also run at cleanup) resumes them.
func (c *privateCluster) freeze() (thaw func()) {
	c.t.Helper()
	raw, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		c.t.Fatal(err)
	}
	master, err := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
	if err != nil {
		c.t.Fatalf("postmaster.pid: %v", err)
	}
	pids := append([]int{master}, childrenOf(master)...)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		})
	}
	c.t.Cleanup(thaw)
	return thaw
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold anything, so read after its last ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
