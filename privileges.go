package pgcheckpoint

import (
	"fmt"
	"strings"
)

// runtimePrivileges is what every operation but EnsureSchema needs.
const runtimePrivileges = "USAGE on the schema, SELECT, INSERT, UPDATE, DELETE on the table and SELECT on its policy table"

// ddlPrivilege names the privilege one EnsureSchema statement needs. PostgreSQL's own message ("permission
// denied for database test", "must be owner of table ...") does not say which privilege would help.
func ddlPrivilege(n names, stmt string) string {
	switch {
	case strings.HasPrefix(stmt, "CREATE SCHEMA"):
		return fmt.Sprintf("the CREATE privilege on the database, needed to create schema %s", n.schema)
	case strings.HasPrefix(stmt, "ALTER TABLE "+n.policy):
		return fmt.Sprintf("ownership of the retention policy table %s, needed to add its byte budget column", n.policy)
	case strings.HasPrefix(stmt, "CREATE TABLE IF NOT EXISTS "+n.policy):
		return fmt.Sprintf("the CREATE privilege on schema %s, needed to create the retention policy table %s", n.schema, n.policy)
	case strings.HasPrefix(stmt, "CREATE TABLE"):
		return fmt.Sprintf("the CREATE privilege on schema %s, needed to create table %s", n.schema, n.table)
	default: // ALTER TABLE, CREATE INDEX and the compression change
		return fmt.Sprintf("ownership of table %s, needed to add its seq or total_bytes column, index or compression", n.table)
	}
}

// privilegeError says which privilege a failed EnsureSchema statement needs when the role lacks it
// (SQLSTATE 42501); other errors pass unchanged. The driver error stays wrapped.
func privilegeError(n names, stmt string, err error) error {
	if SQLState(err) != stateInsufficientPriv {
		return err
	}
	return fmt.Errorf("this role lacks %s; run EnsureSchema or `pgcheckpoint migrate` as the owner "+
		"(the other operations need only %s): %w", ddlPrivilege(n, stmt), runtimePrivileges, err)
}
