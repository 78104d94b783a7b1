package pgcheckpointmock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ziroagent/pgcheckpoint"
	"github.com/ziroagent/pgcheckpoint/pgcheckpointmock"
)

// agentState is what the application checkpoints after every step.
type agentState struct {
	Version int      `json:"version"`
	Step    int      `json:"step"`
	Pending []string `json:"pending"`
}

// advance is application code under test: it loads the newest state of a conversation (or starts
// one), runs one step and checkpoints the result.
func advance(ctx context.Context, store pgcheckpoint.Store, thread, tool string) (string, error) {
	state, _, err := pgcheckpoint.LatestJSON[agentState](ctx, store, thread)
	switch {
	case errors.Is(err, pgcheckpoint.ErrNotFound):
		state = agentState{Version: 2}
	case err != nil:
		return "", err
	}
	state.Step++
	state.Pending = append(state.Pending, tool)
	return pgcheckpoint.PutJSON(ctx, store, thread, state)
}

// A unit test of application code that checkpoints, with go-sqlmock alone: the helpers register the
// statements a Checkpointer sends, and the answers.
func Example() {
	db, mock, err := pgcheckpointmock.New()
	if err != nil {
		panic(err)
	}
	defer db.Close()
	store, err := pgcheckpoint.New(db, pgcheckpoint.Options{})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	d := pgcheckpoint.PostgreSQL

	// First step of a new conversation: nothing stored yet, then the first checkpoint.
	pgcheckpointmock.ExpectGetLatest(mock, d, "conv-1", nil)
	pgcheckpointmock.ExpectRetention(mock, d, 100) // the first put reads the table's retention policy
	first := pgcheckpointmock.ExpectPut(mock, d, "conv-1", []byte(`{"version":2,"step":1,"pending":["search"]}`))
	id, err := advance(ctx, store, "conv-1", "search")
	fmt.Println(id == first.String(), err)

	// Next step: the stored state comes back, the new one is put after it.
	pgcheckpointmock.ExpectGetLatest(mock, d, "conv-1", &pgcheckpoint.Checkpoint{
		ID: first.String(), ThreadID: "conv-1", Snapshot: []byte(`{"step": 1, "pending": ["search"], "version": 2}`),
	})
	pgcheckpointmock.ExpectPut(mock, d, "conv-1", []byte(`{"version":2,"step":2,"pending":["search","refund"]}`), pgcheckpointmock.Seq(2))
	_, err = advance(ctx, store, "conv-1", "refund")
	fmt.Println(err)

	fmt.Println(mock.ExpectationsWereMet())
	// Output:
	// true <nil>
	// <nil>
	// <nil>
}
