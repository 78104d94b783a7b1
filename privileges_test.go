package pgcheckpoint

import (
	"errors"
	"strings"
	"testing"
)

type stateErr string

func (e stateErr) Error() string    { return "ERROR: permission denied (SQLSTATE " + string(e) + ")" }
func (e stateErr) SQLState() string { return string(e) }

// Every EnsureSchema statement maps to the privilege it needs; other errors pass unchanged.
func TestPrivilegeError(t *testing.T) {
	n, err := newNames("app", "cp")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`the CREATE privilege on the database, needed to create schema "app"`,
		`the CREATE privilege on schema "app", needed to create table "app"."cp"`,
		`ownership of table "app"."cp"`, `ownership of table "app"."cp"`, `ownership of table "app"."cp"`, `ownership of table "app"."cp"`,
		`the CREATE privilege on schema "app", needed to create the retention policy table "app"."cp_policy"`,
		`ownership of the retention policy table "app"."cp_policy"`,
		`ownership of table "app"."cp"`,
	}
	stmts := PostgreSQL.ddl(n).all()
	if len(stmts) != len(want) {
		t.Fatalf("%d DDL statements, the test knows %d: map the new one in ddlPrivilege", len(stmts), len(want))
	}
	for i, s := range stmts {
		err := interpret(privilegeError(n, s, stateErr("42501")))
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), want[i]) || SQLState(err) != "42501" {
			t.Errorf("statement %d (%.30s...): %v; want ErrPermission naming %s, SQLSTATE kept", i, s, err, want[i])
		}
	}
	other := stateErr("42P07")
	if got := privilegeError(n, stmts[0], other); got != error(other) {
		t.Errorf("a non-privilege error changed: %v", got)
	}
}
