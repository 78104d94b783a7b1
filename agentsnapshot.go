package pgcheckpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Versions of the AgentSnapshot shape of the TypeScript agent SDK (@ziro-agent/agent).
const (
	// AgentSnapshotV1 is the original shape: resolved siblings carry no parsedArgs.
	AgentSnapshotV1 = 1
	// AgentSnapshotV2 is the current shape: resolved siblings carry parsedArgs.
	AgentSnapshotV2 = 2
)

// AgentSnapshot is the snapshot the TypeScript agent SDK (@ziro-agent/agent, versions 1 and 2) stores
// through @ziro-agent/checkpoint-postgres: a run suspended for human approval, with the tool calls that
// wait for it in PendingApprovals. A Go service decodes it with DecodeAgentSnapshot (or GetJSON) to read
// or resolve pending approvals of TypeScript agents, and may store it back with PutJSON.
//
// Parts whose shape belongs to the model and tools (message content, steps, tool inputs and results,
// budgets) stay raw JSON. Members this type does not know, such as those a later SDK version adds, are
// kept in Extra and written back by MarshalJSON, so a decode-encode round trip loses nothing.
type AgentSnapshot struct {
	Version          int                   `json:"version"`           // AgentSnapshotV1 or AgentSnapshotV2
	ZiroSnapshot     bool                  `json:"__ziro_snapshot__"` // true for every SDK snapshot
	AgentID          string                `json:"agentId,omitempty"`
	CreatedAt        string                `json:"createdAt"` // ISO 8601, as JavaScript's toISOString writes it
	ScopeID          string                `json:"scopeId,omitempty"`
	Step             int                   `json:"step"` // 1-indexed step where the run suspended
	Messages         []AgentMessage        `json:"messages"`
	Steps            []json.RawMessage     `json:"steps"`
	TotalUsage       TokenUsage            `json:"totalUsage"`
	BudgetUsage      json.RawMessage       `json:"budgetUsage,omitempty"`
	BudgetSpec       json.RawMessage       `json:"budgetSpec,omitempty"`
	PendingApprovals []PendingApproval     `json:"pendingApprovals"`
	ResolvedSiblings []ToolExecutionResult `json:"resolvedSiblings"`

	// Extra holds the members not listed above, as they were.
	Extra map[string]json.RawMessage `json:"-"`
}

// AgentMessage is one chat message: Role is "system", "user", "assistant" or "tool"; Content is a JSON
// string or an array of content parts.
type AgentMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Text returns the message's text: the content when it is a string, else its "text" parts joined.
func (m AgentMessage) Text() string {
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.Content, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// TokenUsage counts tokens; a nil field is one the provider did not report.
type TokenUsage struct {
	PromptTokens       *int64 `json:"promptTokens,omitempty"`
	CompletionTokens   *int64 `json:"completionTokens,omitempty"`
	TotalTokens        *int64 `json:"totalTokens,omitempty"`
	CachedPromptTokens *int64 `json:"cachedPromptTokens,omitempty"`
	ReasoningTokens    *int64 `json:"reasoningTokens,omitempty"`
}

// PendingApproval is a tool call that waits for a human decision.
type PendingApproval struct {
	ToolCallID      string          `json:"toolCallId"`
	ToolName        string          `json:"toolName"`
	ToolDescription string          `json:"toolDescription,omitempty"`
	ParsedInput     json.RawMessage `json:"parsedInput,omitempty"` // the validated input the tool would receive
	RawArgs         json.RawMessage `json:"rawArgs,omitempty"`     // the model's arguments before validation
}

// ToolExecutionResult is the outcome of one tool call: a resolved sibling of the suspended batch, or a
// step's tool result.
type ToolExecutionResult struct {
	ToolCallID      string           `json:"toolCallId"`
	ToolName        string           `json:"toolName"`
	Result          json.RawMessage  `json:"result,omitempty"`
	IsError         bool             `json:"isError"`
	DurationMs      float64          `json:"durationMs"`
	ParsedArgs      json.RawMessage  `json:"parsedArgs,omitempty"` // version 2 only
	BudgetExceeded  json.RawMessage  `json:"budgetExceeded,omitempty"`
	PendingApproval *PendingApproval `json:"pendingApproval,omitempty"`
}

// agentSnapshotFields is AgentSnapshot without its methods, for the default encoding.
type agentSnapshotFields AgentSnapshot

// knownAgentSnapshotKeys are the JSON members AgentSnapshot has fields for.
var knownAgentSnapshotKeys = map[string]bool{
	"version": true, "__ziro_snapshot__": true, "agentId": true, "createdAt": true, "scopeId": true,
	"step": true, "messages": true, "steps": true, "totalUsage": true, "budgetUsage": true, "budgetSpec": true,
	"pendingApprovals": true, "resolvedSiblings": true,
}

// UnmarshalJSON decodes the snapshot and keeps unknown members in Extra.
func (s *AgentSnapshot) UnmarshalJSON(b []byte) error {
	var f agentSnapshotFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k := range all {
		if knownAgentSnapshotKeys[k] {
			delete(all, k)
		}
	}
	if len(all) > 0 {
		f.Extra = all
	}
	*s = AgentSnapshot(f)
	return nil
}

// MarshalJSON encodes the snapshot with the members of Extra after the known ones. Nil slices encode
// as [] (the SDK's arrays are never null).
func (s AgentSnapshot) MarshalJSON() ([]byte, error) {
	f := agentSnapshotFields(s)
	if f.Messages == nil {
		f.Messages = []AgentMessage{}
	}
	if f.Steps == nil {
		f.Steps = []json.RawMessage{}
	}
	if f.PendingApprovals == nil {
		f.PendingApprovals = []PendingApproval{}
	}
	if f.ResolvedSiblings == nil {
		f.ResolvedSiblings = []ToolExecutionResult{}
	}
	b, err := json.Marshal(f)
	if err != nil || len(s.Extra) == 0 {
		return b, err
	}
	extra, err := json.Marshal(s.Extra) // map keys sorted: deterministic output
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(extra))
	out.Write(b[:len(b)-1])
	out.WriteByte(',')
	out.Write(extra[1:])
	return out.Bytes(), nil
}

// DecodeAgentSnapshot decodes an agent snapshot (for instance Checkpoint.Snapshot) and checks that it is
// one: "__ziro_snapshot__" true and version 1 or 2. Anything else wraps ErrInvalidSnapshot.
func DecodeAgentSnapshot(b []byte) (AgentSnapshot, error) {
	var s AgentSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return AgentSnapshot{}, fmt.Errorf("pgcheckpoint: decode agent snapshot: %w: %w", ErrInvalidSnapshot, err)
	}
	if !s.ZiroSnapshot {
		return AgentSnapshot{}, fmt.Errorf("pgcheckpoint: decode agent snapshot: \"__ziro_snapshot__\" is not true: %w", ErrInvalidSnapshot)
	}
	if s.Version != AgentSnapshotV1 && s.Version != AgentSnapshotV2 {
		return AgentSnapshot{}, fmt.Errorf("pgcheckpoint: decode agent snapshot: version %d, want 1 or 2: %w", s.Version, ErrInvalidSnapshot)
	}
	return s, nil
}

// Migrate returns the snapshot in the current shape (version 2), as the SDK's migrateSnapshot does:
// version 1 only gains the version number; its resolved siblings keep no parsedArgs.
func (s AgentSnapshot) Migrate() AgentSnapshot {
	if s.Version == AgentSnapshotV1 {
		s.Version = AgentSnapshotV2
	}
	return s
}
