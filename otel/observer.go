// Package pgcheckpointotel reports pgcheckpoint operations to OpenTelemetry: a span per operation and
// metrics for durations, snapshot sizes, retries and trimmed or deleted checkpoints. It lives in a module
// of its own (github.com/ziroagent/pgcheckpoint/otel) so that users of pgcheckpoint who do not use
// OpenTelemetry never download it.
//
//	obs, err := pgcheckpointotel.New(pgcheckpointotel.Config{})
//	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Observer: obs})
//
// Spans start at the operation's start and end at its end, children of the span in the operation's
// context. Metric attributes are low-cardinality (operation, outcome, dialect); the thread id goes on
// spans only, and not even there with Config.OmitThreadID.
package pgcheckpointotel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ziroagent/pgcheckpoint"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/ziroagent/pgcheckpoint/otel"

// Attribute keys.
const (
	AttrOperation = attribute.Key("pgcheckpoint.operation") // a pgcheckpoint.Op: put, put_after, latest, get, ...
	AttrOutcome   = attribute.Key("pgcheckpoint.outcome")   // see Outcome
	AttrDialect   = attribute.Key("db.system.name")         // postgresql or cockroachdb, when configured
	AttrThreadID  = attribute.Key("pgcheckpoint.thread_id")
	AttrBytes     = attribute.Key("pgcheckpoint.snapshot.bytes")
	AttrRows      = attribute.Key("pgcheckpoint.rows")
	AttrAttempts  = attribute.Key("pgcheckpoint.attempts")
)

// Config configures an Observer. The zero value uses the global providers.
type Config struct {
	// TracerProvider and MeterProvider default to otel.GetTracerProvider() and otel.GetMeterProvider().
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Dialect, when set, is recorded as db.system.name ("postgresql" or "cockroachdb").
	Dialect pgcheckpoint.Dialect
	// OmitThreadID leaves thread ids out of spans (they may identify users): no thread id attribute, and
	// in a failed operation's recorded error and status message every occurrence of the thread id, quoted
	// or not, is replaced by <thread id>.
	OmitThreadID bool
}

// Observer implements pgcheckpoint.Observer with OpenTelemetry traces and metrics. It is safe for
// concurrent use.
type Observer struct {
	tracer   trace.Tracer
	omit     bool
	dialect  []attribute.KeyValue
	duration metric.Float64Histogram
	size     metric.Int64Histogram
	retries  metric.Int64Counter
	trimmed  metric.Int64Counter
	deleted  metric.Int64Counter
}

var _ pgcheckpoint.Observer = (*Observer)(nil)

// New returns an Observer that creates its instruments on cfg's meter provider:
//   - pgcheckpoint.operation.duration (s): histogram of operation durations;
//   - pgcheckpoint.snapshot.size (By): histogram of snapshot sizes sent by puts and received by gets;
//   - pgcheckpoint.put.retries: counter of put attempts beyond the first (conflicts, 40001);
//   - pgcheckpoint.put.trimmed: counter of checkpoints retention removed;
//   - pgcheckpoint.deleted: counter of checkpoints removed by delete and prune.
func New(cfg Config) (*Observer, error) {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	o := &Observer{tracer: tp.Tracer(ScopeName), omit: cfg.OmitThreadID}
	if cfg.Dialect != nil {
		name := "postgresql"
		if cfg.Dialect.Name() == pgcheckpoint.CockroachDB.Name() {
			name = "cockroachdb"
		}
		o.dialect = []attribute.KeyValue{AttrDialect.String(name)}
	}
	var err error
	if o.duration, err = m.Float64Histogram("pgcheckpoint.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of pgcheckpoint operations, retries included."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("pgcheckpointotel: %w", err)
	}
	if o.size, err = m.Int64Histogram("pgcheckpoint.snapshot.size", metric.WithUnit("By"),
		metric.WithDescription("Size of snapshots put and got."),
		metric.WithExplicitBucketBoundaries(256, 1<<10, 4<<10, 16<<10, 64<<10, 256<<10, 1<<20, 4<<20, 16<<20)); err != nil {
		return nil, fmt.Errorf("pgcheckpointotel: %w", err)
	}
	if o.retries, err = m.Int64Counter("pgcheckpoint.put.retries", metric.WithUnit("{attempt}"),
		metric.WithDescription("Put attempts beyond the first: concurrent writers, serialization failures.")); err != nil {
		return nil, fmt.Errorf("pgcheckpointotel: %w", err)
	}
	if o.trimmed, err = m.Int64Counter("pgcheckpoint.put.trimmed", metric.WithUnit("{checkpoint}"),
		metric.WithDescription("Checkpoints removed by retention when puts went over the cap.")); err != nil {
		return nil, fmt.Errorf("pgcheckpointotel: %w", err)
	}
	if o.deleted, err = m.Int64Counter("pgcheckpoint.deleted", metric.WithUnit("{checkpoint}"),
		metric.WithDescription("Checkpoints removed by delete and prune.")); err != nil {
		return nil, fmt.Errorf("pgcheckpointotel: %w", err)
	}
	return o, nil
}

// Outcome classifies an operation's error for the outcome attribute: "ok", "not_found" (a get that
// found nothing), "conflict" (a fenced put lost), "invalid" (bad input, rejected before the database),
// "canceled" (the context ended) or "error".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, pgcheckpoint.ErrNotFound):
		return "not_found"
	case errors.Is(err, pgcheckpoint.ErrConflict):
		return "conflict"
	case errors.Is(err, pgcheckpoint.ErrInvalidSnapshot), errors.Is(err, pgcheckpoint.ErrSnapshotTooLarge),
		errors.Is(err, pgcheckpoint.ErrInvalidThreadID), errors.Is(err, pgcheckpoint.ErrInvalidCheckpointID),
		errors.Is(err, pgcheckpoint.ErrInvalidOptions):
		return "invalid"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// Observe implements pgcheckpoint.Observer: it records the finished operation as a span and in the
// metrics.
func (o *Observer) Observe(ctx context.Context, e pgcheckpoint.Event) {
	outcome := Outcome(e.Err)
	common := append([]attribute.KeyValue{AttrOperation.String(string(e.Op)), AttrOutcome.String(outcome)}, o.dialect...)
	set := metric.WithAttributeSet(attribute.NewSet(common...))

	attrs := append([]attribute.KeyValue(nil), common...)
	if e.ThreadID != "" && !o.omit {
		attrs = append(attrs, AttrThreadID.String(e.ThreadID))
	}
	if e.Bytes > 0 {
		attrs = append(attrs, AttrBytes.Int(e.Bytes))
	}
	if e.Op != pgcheckpoint.OpGet && e.Op != pgcheckpoint.OpLatest {
		attrs = append(attrs, AttrRows.Int(e.Rows))
	}
	if e.Attempts > 0 {
		attrs = append(attrs, AttrAttempts.Int(e.Attempts))
	}
	_, span := o.tracer.Start(ctx, "pgcheckpoint."+string(e.Op), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(e.Start), trace.WithAttributes(attrs...))
	if outcome == "error" || outcome == "canceled" {
		err := e.Err
		if o.omit && e.ThreadID != "" {
			err = redactedError{msg: redactThread(err.Error(), e.ThreadID), err: err}
		}
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(trace.WithTimestamp(e.Start.Add(e.Duration)))

	o.duration.Record(ctx, e.Duration.Seconds(), set)
	switch e.Op {
	case pgcheckpoint.OpPut, pgcheckpoint.OpPutAfter, pgcheckpoint.OpPutIfEmpty:
		if e.Err == nil {
			o.size.Record(ctx, int64(e.Bytes), set)
			if e.Rows > 0 {
				o.trimmed.Add(ctx, int64(e.Rows), set)
			}
		}
		if e.Attempts > 1 {
			o.retries.Add(ctx, int64(e.Attempts-1), set)
		}
	case pgcheckpoint.OpGet, pgcheckpoint.OpLatest:
		if e.Err == nil {
			o.size.Record(ctx, int64(e.Bytes), set)
		}
	case pgcheckpoint.OpDelete, pgcheckpoint.OpDeleteThread, pgcheckpoint.OpPrune:
		if e.Rows > 0 {
			o.deleted.Add(ctx, int64(e.Rows), set)
		}
	}
}

// redactThread replaces every occurrence of thread in msg, in Go's quoted form (%q, as pgcheckpoint's
// messages name threads) and as it is, by <thread id>.
func redactThread(msg, thread string) string {
	msg = strings.ReplaceAll(msg, strconv.Quote(thread), "<thread id>")
	return strings.ReplaceAll(msg, thread, "<thread id>")
}

// redactedError is an error whose message has the thread id taken out; errors.Is and errors.As still
// see the original.
type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
