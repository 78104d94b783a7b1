package pgcheckpointotel_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/ziroagent/pgcheckpoint"
	pgcheckpointotel "github.com/ziroagent/pgcheckpoint/otel"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// harness is an Observer wired to in-memory exporters.
type harness struct {
	obs    *pgcheckpointotel.Observer
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newHarness(t *testing.T, cfg pgcheckpointotel.Config) harness {
	t.Helper()
	h := harness{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	cfg.TracerProvider, cfg.MeterProvider = tp, mp
	obs, err := pgcheckpointotel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.obs = obs
	return h
}

// metrics collects the metrics and returns them by name.
func (h harness) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != pgcheckpointotel.ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sum returns the counter's value for the data point with the given operation and outcome.
func sum(t *testing.T, data metricdata.Aggregation, op, outcome string) int64 {
	t.Helper()
	s, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("not an int64 sum: %T", data)
	}
	for _, dp := range s.DataPoints {
		if attrValue(dp.Attributes, pgcheckpointotel.AttrOperation) == op && attrValue(dp.Attributes, pgcheckpointotel.AttrOutcome) == outcome {
			return dp.Value
		}
	}
	return 0
}

func attrValue(set attribute.Set, k attribute.Key) string {
	v, _ := set.Value(k)
	return v.Emit()
}

func spanAttrs(kvs []attribute.KeyValue) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range kvs {
		out[kv.Key] = kv.Value.Emit()
	}
	return out
}

type stateError string

func (e stateError) Error() string    { return "injected " + string(e) }
func (e stateError) SQLState() string { return string(e) }

// TestCheckpointerToOTel runs a real Checkpointer (on go-sqlmock) with the Observer: a put that had to
// run again and trimmed two checkpoints, and a get that found nothing.
func TestCheckpointerToOTel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pgcheckpointotel.Config{Dialect: pgcheckpoint.PostgreSQL})
	db, mock, err := pgcheckpointmock.New()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Observer: h.obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snap := []byte(`{"version":2,"step":7}`)
	any7 := []driver.Value{sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg(), sqlmock.AnyArg()}
	pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.PostgreSQL, 100) // the first put reads the policy
	mock.ExpectQuery(pgcheckpointmock.PostgreSQL.Put).WithArgs(any7...).WillReturnError(stateError("23505"))
	pgcheckpointmock.ExpectPut(mock, pgcheckpoint.PostgreSQL, "conv", snap, pgcheckpointmock.Seq(102), pgcheckpointmock.Trimmed(2))
	if _, err := cp.Put(ctx, "conv", snap); err != nil {
		t.Fatal(err)
	}
	pgcheckpointmock.ExpectGetLatest(mock, pgcheckpoint.PostgreSQL, "nobody", nil)
	if _, err := cp.Latest(ctx, "nobody"); !errors.Is(err, pgcheckpoint.ErrNotFound) {
		t.Fatal(err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Fatal(err)
	}

	spans := h.spans.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	put := spanAttrs(spans[0].Attributes())
	if spans[0].Name() != "pgcheckpoint.put" || put[pgcheckpointotel.AttrThreadID] != "conv" || put[pgcheckpointotel.AttrAttempts] != "2" ||
		put[pgcheckpointotel.AttrRows] != "2" || put[pgcheckpointotel.AttrBytes] != fmt.Sprint(len(snap)) ||
		put[pgcheckpointotel.AttrOutcome] != "ok" || put[pgcheckpointotel.AttrDialect] != "postgresql" {
		t.Errorf("put span %s: %v", spans[0].Name(), put)
	}
	get := spanAttrs(spans[1].Attributes())
	if spans[1].Name() != "pgcheckpoint.latest" || get[pgcheckpointotel.AttrOutcome] != "not_found" || spans[1].Status().Code == codes.Error {
		t.Errorf("get span %s: %v, status %v", spans[1].Name(), get, spans[1].Status())
	}

	m := h.metrics(t)
	if got := sum(t, m["pgcheckpoint.put.retries"], "put", "ok"); got != 1 {
		t.Errorf("retries = %d, want 1", got)
	}
	if got := sum(t, m["pgcheckpoint.put.trimmed"], "put", "ok"); got != 2 {
		t.Errorf("trimmed = %d, want 2", got)
	}
	hist, ok := m["pgcheckpoint.operation.duration"].(metricdata.Histogram[float64])
	if !ok || len(hist.DataPoints) != 2 {
		t.Fatalf("duration histogram: %#v", m["pgcheckpoint.operation.duration"])
	}
	size, ok := m["pgcheckpoint.snapshot.size"].(metricdata.Histogram[int64])
	if !ok || len(size.DataPoints) != 1 || size.DataPoints[0].Sum != int64(len(snap)) || size.DataPoints[0].Count != 1 {
		t.Errorf("size histogram: %#v", m["pgcheckpoint.snapshot.size"])
	}
}

// TestObserveEvents feeds events straight to the Observer: timestamps, outcomes, error status, deletes,
// and thread ids left out on request.
func TestObserveEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, pgcheckpointotel.Config{OmitThreadID: true, Dialect: pgcheckpoint.CockroachDB})
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ctx := context.Background()
	boom := fmt.Errorf("pgcheckpoint: put: 10 attempts: %w", pgcheckpoint.ErrRetriesExhausted)
	for _, e := range []pgcheckpoint.Event{
		{Op: "put", ThreadID: "secret", Start: start, Duration: 30 * time.Millisecond, Bytes: 100, Attempts: 10,
			Err: fmt.Errorf("pgcheckpoint: put: thread %q: %w", "secret", boom)},
		{Op: "put", ThreadID: "secret", Start: start, Duration: time.Millisecond, Bytes: 100, Attempts: 1, Err: fmt.Errorf("x: %w", pgcheckpoint.ErrConflict)},
		{Op: "delete", ThreadID: "secret", Start: start, Duration: time.Millisecond, Rows: 5},
		{Op: "prune", Start: start, Duration: time.Second, Rows: 7},
		{Op: "list", ThreadID: "secret", Start: start, Duration: time.Millisecond,
			Err: fmt.Errorf("pgcheckpoint: list: thread %q and secret: %w", "secret", context.Canceled)},
	} {
		h.obs.Observe(ctx, e)
	}
	spans := h.spans.Ended()
	if len(spans) != 5 {
		t.Fatalf("%d spans", len(spans))
	}
	if !spans[0].StartTime().Equal(start) || !spans[0].EndTime().Equal(start.Add(30*time.Millisecond)) {
		t.Errorf("span times %v .. %v", spans[0].StartTime(), spans[0].EndTime())
	}
	for i, want := range []struct {
		outcome string
		failed  bool
	}{{"error", true}, {"conflict", false}, {"ok", false}, {"ok", false}, {"canceled", true}} {
		a := spanAttrs(spans[i].Attributes())
		if a[pgcheckpointotel.AttrOutcome] != want.outcome || (spans[i].Status().Code == codes.Error) != want.failed {
			t.Errorf("span %d (%s): outcome %q status %v, want %q failed=%v", i, spans[i].Name(), a[pgcheckpointotel.AttrOutcome], spans[i].Status(), want.outcome, want.failed)
		}
		if _, ok := a[pgcheckpointotel.AttrThreadID]; ok {
			t.Errorf("span %d carries the thread id despite OmitThreadID", i)
		}
		if a[pgcheckpointotel.AttrDialect] != "cockroachdb" {
			t.Errorf("span %d dialect %q", i, a[pgcheckpointotel.AttrDialect])
		}
	}
	if len(spans[0].Events()) == 0 {
		t.Error("the failed put's error was not recorded on its span")
	}
	// Defect 10: the recorded error text carried the thread id despite OmitThreadID.
	for i, sp := range spans {
		texts := []string{sp.Status().Description}
		for _, ev := range sp.Events() {
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, text := range texts {
			if strings.Contains(text, "secret") {
				t.Errorf("span %d leaks the thread id despite OmitThreadID: %q", i, text)
			}
		}
	}
	if got := spans[4].Status().Description; got != `pgcheckpoint: list: thread <thread id> and <thread id>: context canceled` {
		t.Errorf("redacted status %q", got)
	}
	m := h.metrics(t)
	if got := sum(t, m["pgcheckpoint.put.retries"], "put", "error"); got != 9 {
		t.Errorf("retries of the failed put = %d, want 9", got)
	}
	if d, p := sum(t, m["pgcheckpoint.deleted"], "delete", "ok"), sum(t, m["pgcheckpoint.deleted"], "prune", "ok"); d != 5 || p != 7 {
		t.Errorf("deleted: delete %d, prune %d", d, p)
	}
	if _, ok := m["pgcheckpoint.snapshot.size"]; ok {
		t.Error("failed puts must not record a snapshot size")
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		nil:                                      "ok",
		pgcheckpoint.ErrNotFound:                 "not_found",
		pgcheckpoint.ErrInvalidThreadID:          "invalid",
		pgcheckpoint.ErrSnapshotTooLarge:         "invalid",
		context.DeadlineExceeded:                 "canceled",
		pgcheckpoint.ErrSchemaMissing:            "error",
		fmt.Errorf("w: %w", stateError("40001")): "error",
	} {
		if got := pgcheckpointotel.Outcome(err); got != want {
			t.Errorf("Outcome(%v) = %q, want %q", err, got, want)
		}
	}
}
