package pgcheckpoint

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The advisory lock keys differ per purpose and per table (so EnsureSchema, first puts and other
// tables' locks never wait for each other), and the golden lock statements carry them.
func TestAdvisoryLockKeys(t *testing.T) {
	t.Parallel()
	seen := map[int32]string{}
	for _, tbl := range []struct{ dir, quoted string }{
		{"postgres", `"public"."ziro_checkpoints"`},
		{"postgres/agents.Checkpoints", `"agents"."Checkpoints"`},
	} {
		for purpose, stmt := range map[string]string{"thread": "lockFirst", "schema": "lockSchema"} {
			key := lockKey(purpose, names{table: tbl.quoted})
			if other, ok := seen[key]; ok {
				t.Errorf("lock key %d of %s %s is also %s's", key, purpose, tbl.quoted, other)
			}
			seen[key] = purpose + " " + tbl.quoted
			b, err := os.ReadFile(filepath.Join("testdata", "sql", filepath.FromSlash(tbl.dir), stmt+".sql"))
			if err != nil {
				t.Fatal(err)
			}
			if want := "pg_advisory_xact_lock(" + strconv.Itoa(int(key)) + ", "; !strings.Contains(string(b), want) {
				t.Errorf("%s/%s = %q, want the two-key form with key %d", tbl.dir, stmt, b, key)
			}
		}
	}
}
