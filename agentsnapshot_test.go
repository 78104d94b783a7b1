package pgcheckpoint_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ziroagent/pgcheckpoint"
)

// jsonEqual reports whether a and b hold the same JSON value (key order and spacing aside).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAgentSnapshotFixtures decodes the benchmark fixtures (the SDK's v2 shape) and checks that encoding
// gives back the same JSON.
func TestAgentSnapshotFixtures(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/fixtures (%v)", err)
	}
	for _, p := range paths {
		raw := readFile(t, p)
		s, err := pgcheckpoint.DecodeAgentSnapshot(raw)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if s.Version != 2 || !s.ZiroSnapshot || s.AgentID != "support-agent" || len(s.Messages) == 0 {
			t.Errorf("%s: decoded %+v", p, s)
		}
		if s.Messages[0].Role != "system" || s.Messages[0].Text() == "" {
			t.Errorf("%s: first message %+v", p, s.Messages[0])
		}
		if s.PendingApprovals == nil || s.ResolvedSiblings == nil || s.Extra != nil {
			t.Errorf("%s: pending %v, siblings %v, extra %v", p, s.PendingApprovals, s.ResolvedSiblings, s.Extra)
		}
		back, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, raw, back) {
			t.Errorf("%s: round trip changed the snapshot", p)
		}
	}
}

// TestAgentSnapshotPendingApprovals decodes version 1 and 2 snapshots with pending approvals, resolved
// siblings, content parts and members this type does not know.
func TestAgentSnapshotPendingApprovals(t *testing.T) {
	t.Parallel()
	v1raw := readFile(t, "testdata/agentsnapshot/v1-pending.json")
	v1, err := pgcheckpoint.DecodeAgentSnapshot(v1raw)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != pgcheckpoint.AgentSnapshotV1 || v1.Step != 2 || v1.ScopeID != "budget-7" {
		t.Errorf("v1 header: %+v", v1)
	}
	if len(v1.PendingApprovals) != 2 {
		t.Fatalf("v1 pending approvals: %+v", v1.PendingApprovals)
	}
	pa := v1.PendingApprovals[0]
	if pa.ToolCallID != "call_2" || pa.ToolName != "refund" || pa.ToolDescription == "" ||
		!jsonEqual(t, pa.ParsedInput, []byte(`{"orderId":"A-1001","amountCents":4599}`)) ||
		!jsonEqual(t, pa.RawArgs, []byte(`{"orderId":"A-1001","amountCents":"4599"}`)) {
		t.Errorf("v1 first pending approval: %+v", pa)
	}
	if got := v1.Messages[1].Text(); got != "Refund order A-1001, please." {
		t.Errorf("text of content parts = %q", got)
	}
	if sib := v1.ResolvedSiblings[0]; sib.ParsedArgs != nil || sib.DurationMs != 12.5 || sib.IsError {
		t.Errorf("v1 sibling: %+v", sib)
	}
	if *v1.TotalUsage.TotalTokens != 128 || v1.TotalUsage.ReasoningTokens != nil {
		t.Errorf("v1 usage: %+v", v1.TotalUsage)
	}
	if m := v1.Migrate(); m.Version != pgcheckpoint.AgentSnapshotV2 || len(m.PendingApprovals) != 2 {
		t.Errorf("Migrate: %+v", m)
	}

	v2raw := readFile(t, "testdata/agentsnapshot/v2-pending.json")
	v2, err := pgcheckpoint.DecodeAgentSnapshot(v2raw)
	if err != nil {
		t.Fatal(err)
	}
	if v2.PendingApprovals[0].ToolName != "restartService" || len(v2.ResolvedSiblings) != 2 {
		t.Errorf("v2: %+v", v2)
	}
	if sib := v2.ResolvedSiblings[1]; !sib.IsError || sib.BudgetExceeded == nil || !jsonEqual(t, sib.ParsedArgs, []byte(`{"service":"payments","window":"5m"}`)) {
		t.Errorf("v2 sibling: %+v", sib)
	}
	if string(v2.ResolvedSiblings[0].Result) != "null" {
		t.Errorf("a null result must stay null, got %q", v2.ResolvedSiblings[0].Result)
	}
	if len(v2.Extra) != 2 || string(v2.Extra["traceId"]) != `"4bf92f3577b34da6a3ce929d0e0e4736"` {
		t.Errorf("v2 extra members: %v", v2.Extra)
	}
	if v2.TotalUsage != (pgcheckpoint.TokenUsage{}) {
		t.Errorf("empty usage must stay empty: %+v", v2.TotalUsage)
	}
	for name, raw := range map[string][]byte{"v1": v1raw, "v2": v2raw} {
		s, _ := pgcheckpoint.DecodeAgentSnapshot(raw)
		back, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, raw, back) {
			t.Errorf("%s round trip:\n got %s\nwant %s", name, back, raw)
		}
	}
}

func TestDecodeAgentSnapshotRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"version":2}`,
		`{"version":3,"__ziro_snapshot__":true}`,
		`{"__ziro_snapshot__":true}`,
		`[1]`,
		`{"version":"2","__ziro_snapshot__":true}`,
	} {
		if _, err := pgcheckpoint.DecodeAgentSnapshot([]byte(in)); !errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) {
			t.Errorf("DecodeAgentSnapshot(%s) = %v, want ErrInvalidSnapshot", in, err)
		}
	}
}

// TestAgentSnapshotEmptyArrays: a snapshot built in Go encodes its lists as [] like the SDK, never null.
func TestAgentSnapshotEmptyArrays(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(pgcheckpoint.AgentSnapshot{Version: 2, ZiroSnapshot: true, CreatedAt: "2026-01-01T00:00:00.000Z"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("encoded %s", b)
	}
}

// TestAgentSnapshotThroughStore stores an agent snapshot with PutJSON and reads it back with GetJSON.
func TestAgentSnapshotThroughStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := pgcheckpoint.NewMemory(pgcheckpoint.Options{})
	s, err := pgcheckpoint.DecodeAgentSnapshot(readFile(t, "testdata/agentsnapshot/v2-pending.json"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := pgcheckpoint.PutJSON(ctx, m, "ops", s)
	if err != nil {
		t.Fatal(err)
	}
	got, cp, err := pgcheckpoint.LatestJSON[pgcheckpoint.AgentSnapshot](ctx, m, "ops")
	if err != nil || cp.ID != id || cp.Version != 2 {
		t.Fatalf("GetJSON: %v, %+v", err, cp)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("got %+v\nwant %+v", got, s)
	}
}
