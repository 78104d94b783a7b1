// Package agentsnapshot holds the snapshot types of the TypeScript agent SDK (@ziro-agent/agent): the
// JSON a TypeScript agent stores through @ziro-agent/checkpoint-postgres when a run suspends for human
// approval. A Go service that shares the table decodes a checkpoint's snapshot with [Decode] to read or
// resolve the pending approvals, and may store it back with [pgcheckpoint.PutJSON].
//
// The types are vendor-neutral data (as River's rivertype is); package pgcheckpoint neither needs nor
// imports them.
package agentsnapshot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ziroagent/pgcheckpoint"
)

// Versions of the snapshot shape of the TypeScript agent SDK (@ziro-agent/agent).
const (
	// V1 is the original shape: resolved siblings carry no parsedArgs.
	V1 = 1
	// V2 is the current shape: resolved siblings carry parsedArgs.
	V2 = 2
)

// Snapshot is what the TypeScript agent SDK (@ziro-agent/agent, versions 1 and 2) stores
// through @ziro-agent/checkpoint-postgres: a run suspended for human approval, with the tool calls that
// wait for it in PendingApprovals. A Go service decodes it with [Decode] (or [pgcheckpoint.GetJSON]) to
// read or resolve pending approvals of TypeScript agents, and may store it back with [pgcheckpoint.PutJSON].
//
// Parts whose shape belongs to the model and tools (message content, steps, tool inputs and results,
// budgets) stay raw JSON. Members this type does not know, such as those a later SDK version adds, are
// kept in Extra and written back by MarshalJSON, so a decode-encode round trip loses nothing.
type Snapshot struct {
	Version          int                   `json:"version"`           // V1 or V2
	ZiroSnapshot     bool                  `json:"__ziro_snapshot__"` // true for every SDK snapshot
	AgentID          string                `json:"agentId,omitempty"`
	CreatedAt        string                `json:"createdAt"` // ISO 8601, as JavaScript's toISOString writes it
	ScopeID          string                `json:"scopeId,omitempty"`
	Step             int                   `json:"step"` // 1-indexed step where the run suspended
	Messages         []Message             `json:"messages"`
	Steps            []json.RawMessage     `json:"steps"`
	TotalUsage       TokenUsage            `json:"totalUsage"`
	BudgetUsage      json.RawMessage       `json:"budgetUsage,omitempty"`
	BudgetSpec       json.RawMessage       `json:"budgetSpec,omitempty"`
	PendingApprovals []PendingApproval     `json:"pendingApprovals"`
	ResolvedSiblings []ToolExecutionResult `json:"resolvedSiblings"`

	// Extra holds the members not listed above, as they were.
	Extra map[string]json.RawMessage `json:"-"`
}

// Message is one chat message: Role is "system", "user", "assistant" or "tool"; Content is a JSON
// string or an array of content parts.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Text returns the message's text: the content when it is a string, else its "text" parts joined.
func (m Message) Text() string {
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

// snapshotFields is Snapshot without its methods, for the default encoding.
type snapshotFields Snapshot

// knownKeys are the JSON members Snapshot has fields for.
var knownKeys = map[string]bool{
	"version": true, "__ziro_snapshot__": true, "agentId": true, "createdAt": true, "scopeId": true,
	"step": true, "messages": true, "steps": true, "totalUsage": true, "budgetUsage": true, "budgetSpec": true,
	"pendingApprovals": true, "resolvedSiblings": true,
}

// UnmarshalJSON decodes the snapshot and keeps unknown members in Extra.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var f snapshotFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k := range all {
		if knownKeys[k] {
			delete(all, k)
		}
	}
	if len(all) > 0 {
		f.Extra = all
	}
	*s = Snapshot(f)
	return nil
}

// MarshalJSON encodes the snapshot with the members of Extra after the known ones. Nil slices encode
// as [] (the SDK's arrays are never null).
func (s Snapshot) MarshalJSON() ([]byte, error) {
	f := snapshotFields(s)
	if f.Messages == nil {
		f.Messages = []Message{}
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

// Decode decodes an agent snapshot (for instance [pgcheckpoint.Checkpoint].Snapshot) and checks that it
// is one: "__ziro_snapshot__" true and version 1 or 2. Anything else wraps [pgcheckpoint.ErrInvalidSnapshot].
func Decode(b []byte) (Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return Snapshot{}, fmt.Errorf("pgcheckpoint: decode agent snapshot: %w: %w", pgcheckpoint.ErrInvalidSnapshot, err)
	}
	if !s.ZiroSnapshot {
		return Snapshot{}, fmt.Errorf("pgcheckpoint: decode agent snapshot: \"__ziro_snapshot__\" is not true: %w", pgcheckpoint.ErrInvalidSnapshot)
	}
	if s.Version != V1 && s.Version != V2 {
		return Snapshot{}, fmt.Errorf("pgcheckpoint: decode agent snapshot: version %d, want 1 or 2: %w", s.Version, pgcheckpoint.ErrInvalidSnapshot)
	}
	return s, nil
}

// Migrate returns the snapshot in the current shape (version 2), as the SDK's migrateSnapshot does:
// version 1 only gains the version number; its resolved siblings keep no parsedArgs.
func (s Snapshot) Migrate() Snapshot {
	if s.Version == V1 {
		s.Version = V2
	}
	return s
}
