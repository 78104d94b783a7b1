package sqlmocktest_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The OpenTelemetry adapter end to end: a real Checkpointer on go-sqlmock reporting through it. The
// adapter's own tests (pgcheckpointotel) feed it events directly; this one lives here so that the
// adapter's module requires only OpenTelemetry and the library.

// otelHarness is an Observer wired to in-memory exporters.
type otelHarness struct {
	obs    *pgcheckpointotel.Observer
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newOTelHarness(t *testing.T, cfg pgcheckpointotel.Config) otelHarness {
	t.Helper()
	h := otelHarness{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
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
func (h otelHarness) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
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
		o, _ := dp.Attributes.Value(pgcheckpointotel.AttrOperation)
		r, _ := dp.Attributes.Value(pgcheckpointotel.AttrOutcome)
		if o.Emit() == op && r.Emit() == outcome {
			return dp.Value
		}
	}
	return 0
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
	h := newOTelHarness(t, pgcheckpointotel.Config{Dialect: pgcheckpoint.PostgreSQL})
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
	pgcheckpointmock.ExpectRetention(mock, pgcheckpoint.PostgreSQL, pgcheckpoint.DefaultMaxCheckpointsPerThread)
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
