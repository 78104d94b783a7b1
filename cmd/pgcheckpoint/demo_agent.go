package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// The demo's agent: a deterministic stand-in for an LLM agent (no network, no model). Each step is a
// pure function of the state before it, so a run resumed from any checkpoint ends in exactly the state
// an uninterrupted run ends in, and the demo can check that.

// agentMessage is one entry of the agent's transcript.
type agentMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// agentState is the snapshot the agent checkpoints after every step.
type agentState struct {
	Version  int            `json:"version"`
	Task     string         `json:"task"`
	Step     int            `json:"step"`
	Steps    int            `json:"steps"`
	Budget   int            `json:"budget"` // what is left of a fictional trip budget, in euros
	Messages []agentMessage `json:"messages"`
	Digest   string         `json:"digest"` // a hash chain over every step's output
}

var agentPlan = []string{
	"search flights Lisbon-Tokyo", "compare fares", "hold the cheapest fare", "search hotels in Shinjuku",
	"check reviews", "book a hotel", "plan day 1", "plan day 2", "plan day 3", "check the rail pass",
	"buy the rail pass", "write the itinerary",
}

const agentTask = "plan a three-day trip to Tokyo within 2000 EUR"

// newAgent returns the state before the first step.
func newAgent(steps int) agentState {
	return agentState{Version: 2, Task: agentTask, Steps: steps, Budget: 2000,
		Messages: []agentMessage{{Role: "user", Content: agentTask}}, Digest: "0000000000000000"}
}

// next runs one step: a tool call and its (deterministic) result.
func (s agentState) next() agentState {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", s.Digest, s.Step)
	x := h.Sum64()
	action := agentPlan[s.Step%len(agentPlan)]
	cost := int(x%90) + 10
	s.Step++
	s.Budget -= cost
	s.Messages = append(append([]agentMessage(nil), s.Messages...),
		agentMessage{Role: "tool", Content: fmt.Sprintf("step %d: %s -> option #%d, %d EUR", s.Step, action, x%7+1, cost)})
	h.Reset()
	fmt.Fprintf(h, "%s|%s", s.Digest, s.Messages[len(s.Messages)-1].Content)
	s.Digest = fmt.Sprintf("%016x", h.Sum64())
	return s
}

// done reports whether the agent has finished.
func (s agentState) done() bool { return s.Step >= s.Steps }

// answer is the agent's final result in one line.
func (s agentState) answer() string {
	return fmt.Sprintf("itinerary ready after %d steps, %d EUR left (digest %s)", s.Step, s.Budget, s.Digest)
}

// uninterrupted runs the agent from the start to the end without a store.
func uninterrupted(steps int) agentState {
	s := newAgent(steps)
	for !s.done() {
		s = s.next()
	}
	return s
}

// agentEvent is what runAgent tells its caller: where it resumed, each checkpoint, the end.
type agentEvent struct {
	kind string // "start", "resume", "checkpoint", "done"
	step int
	id   string
	s    agentState
}

// runAgent runs the agent on a thread until it is done, resuming from the thread's newest checkpoint
// when there is one. Every step is stored with a fenced put (PutAfter the previous checkpoint), so a
// second copy of the agent on the same thread would fail instead of forking the thread. think stands in
// for the time a real agent waits for its model or tools.
func runAgent(ctx context.Context, store pgcheckpoint.Store, thread string, steps int, think time.Duration, report func(agentEvent) error) (agentState, error) {
	s := newAgent(steps)
	cp, err := store.Latest(ctx, thread)
	head := ""
	switch {
	case errors.Is(err, pgcheckpoint.ErrNotFound):
		err = report(agentEvent{kind: "start", s: s})
	case err != nil:
		return s, err
	default:
		if err := json.Unmarshal(cp.Snapshot, &s); err != nil {
			return s, fmt.Errorf("demo: checkpoint %s is not an agent state: %w", cp.ID, err)
		}
		head = cp.ID
		err = report(agentEvent{kind: "resume", step: s.Step, id: cp.ID, s: s})
	}
	if err != nil {
		return s, err
	}
	for !s.done() {
		if think > 0 {
			t := time.NewTimer(think)
			select {
			case <-ctx.Done():
				t.Stop()
				return s, ctx.Err()
			case <-t.C:
			}
		}
		s = s.next()
		b, err := json.Marshal(s)
		if err != nil {
			return s, err
		}
		if head == "" {
			head, err = store.PutIfEmpty(ctx, thread, b)
		} else {
			head, err = store.PutAfter(ctx, thread, head, b)
		}
		if err != nil {
			return s, err
		}
		if err := report(agentEvent{kind: "checkpoint", step: s.Step, id: head, s: s}); err != nil {
			return s, err
		}
	}
	return s, report(agentEvent{kind: "done", step: s.Step, id: head, s: s})
}
