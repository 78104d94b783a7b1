package pgcheckpoint_test

import (
	"context"
	"errors"
	"log/slog"
	"os"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
)

// slogObserver logs every operation with log/slog: successes at debug level, failures at warn level
// (a get that finds nothing is an answer, not a failure).
func slogObserver(logger *slog.Logger) pgcheckpoint.Observer {
	return pgcheckpoint.ObserverFunc(func(ctx context.Context, e pgcheckpoint.Event) {
		level := slog.LevelDebug
		if e.Err != nil && !errors.Is(e.Err, pgcheckpoint.ErrNotFound) {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("op", string(e.Op)),
			slog.String("thread", e.ThreadID),
			slog.Duration("duration", e.Duration),
			slog.Int("bytes", e.Bytes),
			slog.Int("rows", e.Rows),
		}
		if e.Attempts > 1 {
			attrs = append(attrs, slog.Int("attempts", e.Attempts))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.Any("err", e.Err))
		}
		logger.LogAttrs(ctx, level, "pgcheckpoint", attrs...)
	})
}

// An Observer that logs with log/slog. The database is go-sqlmock (pgcheckpointmock) so the example runs
// anywhere; times and durations are left out of the output to keep it stable.
func ExampleObserverFunc_slog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	db, mock, err := pgcheckpointmock.New()
	if err != nil {
		panic(err)
	}
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Observer: slogObserver(logger)})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	snap := []byte(`{"version":2,"step":1}`)
	pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.PostgreSQL, 100)
	pgcheckpointmock.ExpectPut(mock, pgcheckpoint.PostgreSQL, "conv-42", snap)
	_, _ = cp.Put(ctx, "conv-42", snap)
	pgcheckpointmock.ExpectGetLatest(mock, pgcheckpoint.PostgreSQL, "conv-7", nil)
	_, _ = cp.Latest(ctx, "conv-7")
	// Output:
	// level=DEBUG msg=pgcheckpoint op=put thread=conv-42 bytes=22 rows=0
	// level=DEBUG msg=pgcheckpoint op=latest thread=conv-7 bytes=0 rows=0 err="pgcheckpoint: latest thread \"conv-7\": checkpoint not found"
}
