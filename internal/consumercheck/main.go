// Command consumercheck proves that every module of the repository can be required from outside at a
// tagged version, and that requiring one brings only what it imports. It is what the release steps of
// RELEASING.md run before tagging, and scripts/test runs it on every change (scripts/consumer-check).
//
// It serves the repository's working tree (the files git tracks or would track, not the ignored ones) as
// version V from a file-based module proxy it builds with golang.org/x/mod/zip: a module zip, .mod,
// .info and list file per module, V being the version every nested module requires of the library. Then,
// in throwaway consumer modules in a temporary directory outside the repository, with the proxy and the
// local module cache as the only sources (GOPROXY of file:// URLs, GOSUMDB off, a proxy variable that
// refuses connections, an empty module cache of their own), it requires each published module at V,
// builds a program that imports its packages, and compares `go mod graph` with what the module should
// bring:
//
//   - the library: itself and github.com/google/uuid, nothing else; its packages import only the
//     standard library and uuid;
//   - pgcheckpointotel, the framework adapters: the library, uuid and the module itself on top of the
//     graph their own third-party requirements have (OpenTelemetry, Eino, Genkit);
//   - pgcheckpointmock: the library, uuid and go-sqlmock;
//   - the CLI: it builds and runs, and no package of the repository embeds files into it.
//
// Each consumer's go line is the module's own; `go mod tidy` raising it would mean that the module's go
// line is older than its dependencies need.
//
// Why is this a separate module? It needs golang.org/x/mod, which the library must not require.
//
// Usage (from the repository root): scripts/consumer-check [-only DIR] [-keep]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

const root = "github.com/ziroagent/pgcheckpoint"

// consumer is what one throwaway module requires and imports, and what its graph may hold.
type consumer struct {
	dir      string   // the module's directory in the repository, "." for the library
	imports  []string // packages the consumer's program imports ("" builds the module's main package)
	extra    []string // module paths the module may bring besides its own third-party requirements' graph
	baseline bool     // subtract the graph of the module's own third-party requirements
}

// published are the modules users require; every other module of the repository must be listed in
// unpublished, so that a new module cannot be left out of the check.
var published = []consumer{
	{dir: ".", imports: []string{root, root + "/agentsnapshot", root + "/pgcheckpointtest"}, extra: []string{root, "github.com/google/uuid"}},
	{dir: "pgcheckpointotel", imports: []string{root + "/pgcheckpointotel"}, extra: []string{root, "github.com/google/uuid", root + "/pgcheckpointotel"}, baseline: true},
	{dir: "pgcheckpointmock", imports: []string{root + "/pgcheckpointmock"}, extra: []string{root, "github.com/google/uuid", root + "/pgcheckpointmock"}, baseline: true},
	{dir: "adapters/eino", imports: []string{root + "/adapters/eino"}, extra: []string{root, "github.com/google/uuid", root + "/adapters/eino"}, baseline: true},
	{dir: "adapters/genkit", imports: []string{root + "/adapters/genkit"}, extra: []string{root, "github.com/google/uuid", root + "/adapters/genkit"}, baseline: true},
	{dir: "cmd/pgcheckpoint", imports: []string{""}, extra: []string{root, "github.com/google/uuid", root + "/cmd/pgcheckpoint"}, baseline: true},
}

// unpublished are the repository's test and tool modules: served by the proxy, never tagged.
var unpublished = []string{"integration", "internal/sqlmocktest", "internal/consumercheck"}

func main() {
	repo := flag.String("repo", "../..", "the repository root")
	keep := flag.Bool("keep", false, "keep the temporary proxy and consumers and print where they are")
	only := flag.String("only", "", "check only the module in this directory (\".\", \"pgcheckpointotel\", ...)")
	flag.Parse()
	if err := run(*repo, *only, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "consumer-check: FAIL:", err)
		os.Exit(1)
	}
}

func run(repo, only string, keep bool) (err error) {
	repo, err = filepath.Abs(repo)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "pgcheckpoint-consumer-check-")
	if err != nil {
		return err
	}
	if strings.HasPrefix(tmp+string(filepath.Separator), repo+string(filepath.Separator)) {
		return fmt.Errorf("the temporary directory %s is inside the repository %s", tmp, repo)
	}
	modcache := filepath.Join(tmp, "modcache")
	defer func() {
		if keep {
			fmt.Println("consumer-check: kept", tmp)
			return
		}
		// The consumers' module cache is read-only, as the go command leaves it.
		_ = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
		_ = os.RemoveAll(tmp)
	}()

	tree := filepath.Join(tmp, "tree")
	if err := copyTree(repo, tree); err != nil {
		return err
	}
	mods, version, err := modules(tree)
	if err != nil {
		return err
	}
	proxy := filepath.Join(tmp, "proxy")
	for _, m := range mods {
		if err := serve(proxy, m, version); err != nil {
			return err
		}
	}
	fmt.Printf("consumer-check: %d modules served as %s from %s\n", len(mods), version, proxy)

	realCache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",file://"+filepath.ToSlash(filepath.Join(realCache, "cache", "download")),
		"GOSUMDB=off", "GONOSUMDB=", "GONOPROXY=", "GOPRIVATE=", "GOVCS=*:off", "GOWORK=off",
		// -trimpath: the build cache serves the consumers what the repository's own builds compiled.
		"GOFLAGS=-mod=mod -trimpath",
		"GOTOOLCHAIN=local", "GOENV=off", "GOMODCACHE="+modcache,
		// Network off: anything that would still try to connect goes to a port nothing listens on.
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=",
	)
	byDir := map[string]modInfo{}
	for _, m := range mods {
		byDir[m.dir] = m
	}
	var failures []string
	checked := 0
	for _, c := range published {
		if only != "" && c.dir != only {
			continue
		}
		checked++
		m := byDir[c.dir]
		start := time.Now()
		report, err := check(filepath.Join(tmp, "consumers"), env, c, m, version)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", m.path, err))
			fmt.Printf("FAIL %s@%s: %v\n", m.path, version, err)
			continue
		}
		fmt.Printf("ok   %s@%s (go %s, %.1fs): %s\n", m.path, version, m.goVersion, time.Since(start).Seconds(), report)
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	if checked == 0 {
		return fmt.Errorf("no published module in directory %q", only)
	}
	return nil
}

// copyTree copies the files git tracks or would track (not the ignored ones: node_modules, binaries)
// from repo to dst: the content a tag of the working tree would hold.
func copyTree(repo, dst string) error {
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(repo, filepath.FromSlash(name))
		info, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree, not yet in the index
		}
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file: module zips hold regular files only", name)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		p := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// modInfo is one module of the repository.
type modInfo struct {
	dir, path, goVersion string
	abs                  string // the module's directory in the copied tree
	gomod                []byte
	file                 *modfile.File
}

// modules finds every module of the tree and the version V they are served as: the version each nested
// module requires of the library, which must be the same everywhere.
func modules(tree string) ([]modInfo, string, error) {
	var mods []modInfo
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "go.mod" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := modfile.Parse(p, b, nil)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(tree, filepath.Dir(p))
		m := modInfo{dir: filepath.ToSlash(dir), abs: filepath.Dir(p), path: f.Module.Mod.Path, gomod: b, file: f}
		if f.Go != nil {
			m.goVersion = f.Go.Version
		}
		mods = append(mods, m)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].dir < mods[j].dir })
	version := ""
	for _, m := range mods {
		want := root
		if m.dir != "." {
			want = root + "/" + m.dir
		}
		if m.path != want {
			return nil, "", fmt.Errorf("%s/go.mod says module %s, want %s (the path follows the directory)", m.dir, m.path, want)
		}
		if !slices.Contains(unpublished, m.dir) && !slices.ContainsFunc(published, func(c consumer) bool { return c.dir == m.dir }) {
			return nil, "", fmt.Errorf("module %s is neither published nor unpublished in consumercheck: add it to one list", m.dir)
		}
		if !slices.Contains(unpublished, m.dir) {
			// pkg.go.dev shows a module's documentation only when the module itself holds its license.
			if _, err := os.Stat(filepath.Join(m.abs, "LICENSE")); err != nil {
				return nil, "", fmt.Errorf("published module %s has no LICENSE file of its own (copy the repository's)", m.dir)
			}
		}
		if m.dir == "." {
			continue
		}
		found := false
		for _, r := range m.file.Require {
			if r.Mod.Path != root {
				continue
			}
			found = true
			if version == "" {
				version = r.Mod.Version
			}
			if r.Mod.Version != version {
				return nil, "", fmt.Errorf("%s requires %s %s, others %s: every module requires the same version (RELEASING.md)", m.dir, root, r.Mod.Version, version)
			}
		}
		if !found && !slices.Contains(unpublished, m.dir) {
			return nil, "", fmt.Errorf("%s does not require %s", m.dir, root)
		}
	}
	if version == "" || version == "v0.0.0" {
		return nil, "", fmt.Errorf("the nested modules require %s at %q, not at a version a tag can give", root, version)
	}
	return mods, version, nil
}

// serve writes m at version into the file proxy: list, .info, .mod and the module zip.
func serve(proxy string, m modInfo, version string) error {
	esc, err := module.EscapePath(m.path)
	if err != nil {
		return err
	}
	dir := filepath.Join(proxy, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	for name, b := range map[string][]byte{"list": []byte(version + "\n"), version + ".info": info, version + ".mod": m.gomod} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, version+".zip"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := zip.CreateFromDir(f, module.Version{Path: m.path, Version: version}, m.abs); err != nil {
		return fmt.Errorf("zip %s: %w", m.path, err)
	}
	return f.Close()
}

// check runs one consumer and returns a one-line report.
func check(dir string, env []string, c consumer, m modInfo, version string) (string, error) {
	name := strings.ReplaceAll(c.dir, "/", "-")
	if c.dir == "." {
		name = "library"
	}
	cdir := filepath.Join(dir, name)
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return "", err
	}
	gomod := fmt.Sprintf("module example.com/consumer/%s\n\ngo %s\n", name, m.goVersion)
	if err := os.WriteFile(filepath.Join(cdir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if c.imports[0] != "" {
		var b strings.Builder
		b.WriteString("package main\n\nimport (\n")
		for _, p := range c.imports {
			fmt.Fprintf(&b, "\t_ %q\n", p)
		}
		b.WriteString(")\n\nfunc main() {}\n")
		if err := os.WriteFile(filepath.Join(cdir, "main.go"), []byte(b.String()), 0o644); err != nil {
			return "", err
		}
	}
	goCmd := func(args ...string) (string, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = cdir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out), nil
	}
	// go get resolves what building the module's packages needs (not its dependencies' tests) and
	// raises the consumer's go line when a dependency needs a newer one.
	get := []string{"get", m.path + "@" + version}
	if c.imports[0] == "" {
		get = []string{"get", "-tool", m.path + "@" + version}
	}
	if _, err := goCmd(get...); err != nil {
		return "", err
	}
	after, err := os.ReadFile(filepath.Join(cdir, "go.mod"))
	if err != nil {
		return "", err
	}
	f, err := modfile.Parse("go.mod", after, nil)
	if err != nil {
		return "", err
	}
	if f.Go == nil || f.Go.Version != m.goVersion {
		got := "none"
		if f.Go != nil {
			got = f.Go.Version
		}
		return "", fmt.Errorf("requiring the module raised the consumer's go line from %s to %s: the module's go line is older than its dependencies need", m.goVersion, got)
	}

	if c.imports[0] == "" { // the CLI
		bin := filepath.Join(cdir, "bin")
		if _, err := goCmd("build", "-o", bin, m.path); err != nil {
			return "", err
		}
		cmd := exec.Command(bin, "help")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s help: %v\n%s", m.path, err, out)
		}
		embeds, err := goCmd("list", "-deps", "-f", `{{if .EmbedFiles}}{{.ImportPath}}: {{join .EmbedFiles " "}}{{end}}`, m.path)
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(strings.TrimSpace(embeds), "\n") {
			if strings.HasPrefix(line, root) {
				return "", fmt.Errorf("the CLI embeds files: %s", line)
			}
		}
	} else if _, err := goCmd("build", "./..."); err != nil {
		return "", err
	}
	graph, err := goCmd("mod", "graph")
	if err != nil {
		return "", err
	}
	got := graphModules(graph, "example.com/consumer/"+name)
	if c.baseline {
		base, err := baselineGraph(dir, env, name, m)
		if err != nil {
			return "", err
		}
		got = slices.DeleteFunc(got, func(p string) bool { return slices.Contains(base, p) && !slices.Contains(c.extra, p) })
	}
	want := slices.Clone(c.extra)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		return "", fmt.Errorf("go mod graph brings %v, want %v", got, want)
	}
	report := "graph: " + strings.Join(got, ", ")
	if c.baseline {
		report += " on top of the graph of its third-party requirements"
	}
	if c.imports[0] == "" {
		report += "; builds as a tool dependency, runs, embeds no file of the repository"
	}
	if c.dir == "." {
		deps, err := goCmd("list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{end}}`, "./...")
		if err != nil {
			return "", err
		}
		for _, p := range strings.Fields(deps) {
			if p != "github.com/google/uuid" && p != root && !strings.HasPrefix(p, root+"/") && !strings.HasPrefix(p, "example.com/consumer/") {
				return "", fmt.Errorf("the library's packages import %s", p)
			}
		}
		report += "; packages import only the standard library and uuid"
	}
	return report, nil
}

// baselineGraph is the module paths of the graph of a consumer that requires only m's own third-party
// requirements (direct and indirect), at the versions m requires.
func baselineGraph(dir string, env []string, name string, m modInfo) ([]string, error) {
	bdir := filepath.Join(dir, name+"-baseline")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module example.com/consumer/%s-baseline\n\ngo %s\n\n", name, m.goVersion)
	for _, r := range m.file.Require {
		if !strings.HasPrefix(r.Mod.Path, root) {
			fmt.Fprintf(&b, "require %s %s\n", r.Mod.Path, r.Mod.Version)
		}
	}
	if err := os.WriteFile(filepath.Join(bdir, "go.mod"), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "mod", "graph")
	cmd.Dir, cmd.Env = bdir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("baseline go mod graph: %v\n%s", err, stderr.String())
	}
	return graphModules(string(out), "example.com/consumer/"+name+"-baseline"), nil
}

// graphModules returns the sorted module paths of a `go mod graph` output, without the main module and
// the go and toolchain nodes.
func graphModules(graph, main string) []string {
	seen := map[string]bool{}
	for _, f := range strings.Fields(graph) {
		p, _, _ := strings.Cut(f, "@")
		if p != main && p != "go" && p != "toolchain" {
			seen[p] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// goEnv returns one variable of `go env`.
func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
