module github.com/ziroagent/pgcheckpoint/internal/sqlmocktest

go 1.26.0

require github.com/ziroagent/pgcheckpoint v0.1.0

require github.com/ziroagent/pgcheckpoint/pgcheckpointmock v0.1.0

require (
	github.com/DATA-DOG/go-sqlmock v1.5.2
	github.com/jackc/pgx/v5 v5.13.0
	github.com/lib/pq v1.12.3
	github.com/ziroagent/pgcheckpoint/pgcheckpointotel v0.1.0
	go.opentelemetry.io/otel v1.47.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/otel/sdk/metric v1.47.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)

replace github.com/ziroagent/pgcheckpoint => ../..

replace github.com/ziroagent/pgcheckpoint/pgcheckpointmock => ../../pgcheckpointmock

replace github.com/ziroagent/pgcheckpoint/pgcheckpointotel => ../../pgcheckpointotel
