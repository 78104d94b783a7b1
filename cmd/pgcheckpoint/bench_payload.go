package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// benchSizes are the payload sizes bench measures: those of the repository's fixtures
// (testdata/fixtures), which the library's own benchmarks use.
var benchSizes = []int{1 << 10, 64 << 10, 1 << 20}

// benchWords are the words of the generated conversation, the vocabulary of the fixtures.
var benchWords = strings.Fields(`a account address an and approval approved are argument array as assistant at be
been boolean budget by call can cancel cannot carrier check close code color comment completion confirm could
create customer database date delete delivered discount email error escalate false field find for from function
high in integer invalid invoice is item json label limit list lookup low manager medium missing model month name
need note null number object of on order package parameter payment pending phone please policy price priority
product prompt query record refund rejected reopen request resolve response result retry schema search shipping
should show size status step string system tax thanks the ticket time timeout to today token tomorrow tool total
tracking true update usage user valid value want warehouse was week weight were will with would year yesterday`)

// benchPayload returns an agent snapshot (the TypeScript SDK's version 2 shape) of exactly size bytes of
// compact ASCII JSON: a support conversation of user and assistant messages with one step per answer, like
// the fixtures in testdata/fixtures (it compresses about as well; bench_payload_test.go checks both). The
// same size always gives the same bytes. The CLI generates it rather than embedding the fixtures, so the
// installed binary carries no test data.
func benchPayload(size int) ([]byte, error) {
	if !isBenchSize(size) {
		return nil, fmt.Errorf("no payload of %d bytes; there are %s", size, benchSizeNames())
	}
	type usage struct {
		PromptTokens     int `json:"promptTokens"`
		CompletionTokens int `json:"completionTokens"`
		TotalTokens      int `json:"totalTokens"`
	}
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type step struct {
		Index        int      `json:"index"`
		FinishReason string   `json:"finishReason"`
		Usage        usage    `json:"usage"`
		ToolCalls    []string `json:"toolCalls"`
		ToolResults  []string `json:"toolResults"`
	}
	snap := struct {
		Version          int       `json:"version"`
		Brand            bool      `json:"__ziro_snapshot__"`
		AgentID          string    `json:"agentId"`
		CreatedAt        string    `json:"createdAt"`
		Step             int       `json:"step"`
		Messages         []message `json:"messages"`
		Steps            []step    `json:"steps"`
		TotalUsage       usage     `json:"totalUsage"`
		PendingApprovals []string  `json:"pendingApprovals"`
		ResolvedSiblings []string  `json:"resolvedSiblings"`
	}{Version: 2, Brand: true, AgentID: "support-agent", CreatedAt: "2026-01-01T00:00:00.000Z",
		Steps: []step{}, PendingApprovals: []string{}, ResolvedSiblings: []string{}}
	r := rand.New(rand.NewPCG(uint64(size), 2026))
	sentence := func(words int) string {
		var b strings.Builder
		for i := range words {
			w := benchWords[r.IntN(len(benchWords))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			if r.IntN(12) == 0 {
				fmt.Fprint(&b, r.IntN(100000))
			}
		}
		b.WriteByte('.')
		return b.String()
	}
	encode := func() []byte {
		b, err := json.Marshal(snap)
		if err != nil {
			panic(err) // strings, ints and bools only
		}
		return b
	}
	length := func(v any) int { b, _ := json.Marshal(v); return len(b) + 1 } // and its comma
	snap.Messages = append(snap.Messages, message{"system", sentence(25)})
	// n estimates the encoded length as the conversation grows (the totals' digits aside); the loop
	// below makes it exact.
	for n := len(encode()); n < size; {
		m := message{"user", sentence(10 + r.IntN(120))}
		if len(snap.Messages)%2 == 0 {
			m.Role = "assistant"
			u := usage{PromptTokens: 150 + r.IntN(300), CompletionTokens: len(m.Content) / 5}
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
			snap.Step++
			st := step{Index: snap.Step, FinishReason: "stop", Usage: u, ToolCalls: []string{}, ToolResults: []string{}}
			snap.Steps = append(snap.Steps, st)
			snap.TotalUsage.PromptTokens += u.PromptTokens
			snap.TotalUsage.CompletionTokens += u.CompletionTokens
			snap.TotalUsage.TotalTokens += u.TotalTokens
			n += length(st)
		}
		snap.Messages = append(snap.Messages, m)
		n += length(m)
	}
	// Cut the last message (ASCII, no escapes: one byte per character) to reach the size exactly; when it
	// is too short for that, it goes and the one before it is cut instead.
	for {
		last := &snap.Messages[len(snap.Messages)-1]
		switch over := len(encode()) - size; {
		case over < 0:
			last.Content += " " + sentence(10-over/5)
		case over <= len(last.Content):
			last.Content = last.Content[:len(last.Content)-over]
			return encode(), nil
		default:
			snap.Messages = snap.Messages[:len(snap.Messages)-1]
		}
	}
}

func isBenchSize(size int) bool {
	for _, s := range benchSizes {
		if s == size {
			return true
		}
	}
	return false
}

func benchSizeNames() string {
	s := make([]string, len(benchSizes))
	for i, n := range benchSizes {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
