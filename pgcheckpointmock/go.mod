module github.com/ziroagent/pgcheckpoint/pgcheckpointmock

go 1.24.0

require (
	github.com/DATA-DOG/go-sqlmock v1.5.2
	github.com/ziroagent/pgcheckpoint v0.1.0
)

require github.com/google/uuid v1.6.0 // indirect

replace github.com/ziroagent/pgcheckpoint => ..
