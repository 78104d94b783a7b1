package genkit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/firebase/genkit/go/core/x/session"
	"github.com/ziroagent/pgcheckpoint"
	pggenkit "github.com/ziroagent/pgcheckpoint/adapters/genkit"
)

// UserState is the state type of Genkit's own session tests (core/x/session/session_test.go), with a
// nested part like its TestSession_ComplexState.
type UserState struct {
	Name        string            `json:"name"`
	Count       int               `json:"count"`
	Preferences map[string]string `json:"preferences,omitempty"`
	History     []Turn            `json:"history,omitempty"`
}

type Turn struct {
	Role string `json:"role"`
	Text string `json:"text"`
}

const (
	childEnv       = "PGCHECKPOINT_GENKIT_CHILD"
	childDriverEnv = "PGCHECKPOINT_GENKIT_DRIVER"
	childSchemaEnv = "PGCHECKPOINT_GENKIT_SCHEMA"
	resultPrefix   = "GENKIT-RESULT "
	sessionID      = "support-42"
)

var (
	initialState = UserState{Name: "Eve", Count: 0, Preferences: map[string]string{"lang": "en"}}
	firstUpdate  = UserState{Name: "Eve", Count: 1, Preferences: map[string]string{"lang": "en"},
		History: []Turn{{"user", "hello"}, {"model", "hi, Eve"}}}
	secondUpdate = UserState{Name: "Eve", Count: 2, Preferences: map[string]string{"lang": "fr", "tone": "brief"},
		History: []Turn{{"user", "hello"}, {"model", "hi, Eve"}, {"user", "en français"}, {"model", "d'accord"}}}
	thirdUpdate = UserState{Name: "Eve", Count: 3, History: []Turn{{"user", "bye"}}}
)

// TestChildProcess is the body of the child processes the other tests start; without childEnv it
// returns at once.
func TestChildProcess(t *testing.T) {
	phase := os.Getenv(childEnv)
	if phase == "" {
		return
	}
	ctx := context.Background()
	db := openDB(t, os.Getenv(childDriverEnv))
	store := pggenkit.New[UserState](openCheckpointer(t, db, os.Getenv(childSchemaEnv)), pggenkit.Options{Fencing: true})
	var result any
	switch phase {
	case "create":
		s, err := session.New(ctx, session.WithID[UserState](sessionID), session.WithInitialState(initialState),
			session.WithStore[UserState](store))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []UserState{firstUpdate, secondUpdate} {
			if err := s.UpdateState(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		result = s.State()
	case "load":
		s, err := session.Load(ctx, store, sessionID)
		if err != nil {
			t.Fatal(err)
		}
		result = s.State()
	default:
		t.Fatalf("unknown phase %q", phase)
	}
	b, _ := json.Marshal(result)
	fmt.Printf("%s%s\n", resultPrefix, b)
}

func runChild(t *testing.T, phase, driver, schemaName string) UserState {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+phase, childDriverEnv+"="+driver, childSchemaEnv+"="+schemaName,
		dsnEnv+"="+testDSN(t))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", phase, err, stdout.String(), stderr.String())
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			var s UserState
			if err := json.Unmarshal([]byte(rest), &s); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	t.Fatalf("child %s printed no result:\n%s", phase, stdout.String())
	return UserState{}
}

// TestSessionAcrossProcesses: a session created and updated in one OS process is loaded in this one with
// an equal state; updated here, it is loaded in a third process, equal again.
func TestSessionAcrossProcesses(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cp, _, schemaName := newCheckpointer(t, driver)

			if got := runChild(t, "create", driver, schemaName); !reflect.DeepEqual(got, secondUpdate) {
				t.Fatalf("child state %+v", got)
			}
			store := pggenkit.New[UserState](cp, pggenkit.Options{Fencing: true})
			s, err := session.Load(ctx, store, sessionID)
			if err != nil {
				t.Fatal(err)
			}
			if s.ID() != sessionID || !reflect.DeepEqual(s.State(), secondUpdate) {
				t.Fatalf("loaded %q %+v, want %+v", s.ID(), s.State(), secondUpdate)
			}
			if err := s.UpdateState(ctx, thirdUpdate); err != nil {
				t.Fatal(err)
			}
			if got := runChild(t, "load", driver, schemaName); !reflect.DeepEqual(got, thirdUpdate) {
				t.Fatalf("third process loaded %+v, want %+v", got, thirdUpdate)
			}
			// Every state is kept: New's initial one, two updates there, one here.
			list, err := cp.List(ctx, sessionID, pgcheckpoint.ListOptions{})
			if err != nil || len(list) != 4 {
				t.Fatalf("history: %d, %v", len(list), err)
			}
		})
	}
}

// TestConcurrentSaves mirrors Genkit's TestSession_ConcurrentAccess and TestInMemoryStore_ConcurrentAccess
// against PostgreSQL, unfenced: every Save succeeds, and afterwards there is exactly one newest state,
// which is one of those saved and the one Get returns.
func TestConcurrentSaves(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, driver)
			schemaName := newSchemaName(t, db)
			// NoLimit: the test counts every state saved.
			cp, err := pgcheckpoint.New(db, pgcheckpoint.Options{Schema: schemaName, MaxCheckpointsPerThread: pgcheckpoint.NoLimit})
			if err != nil {
				t.Fatal(err)
			}
			if err := cp.EnsureSchema(ctx); err != nil {
				t.Fatal(err)
			}
			store := pggenkit.New[UserState](cp, pggenkit.Options{})
			sess, err := session.New(ctx, session.WithID[UserState]("shared"), session.WithInitialState(UserState{Name: "Initial"}),
				session.WithStore[UserState](store))
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, updates = 8, 10
			errs := make(chan error, goroutines*updates*2)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Half the goroutines share one Session (Genkit serialises its UpdateState), half save
					// through the store directly, each with a session loaded of its own.
					own, err := session.Load(ctx, store, "shared")
					if err != nil {
						errs <- err
						return
					}
					for j := range updates {
						st := UserState{Name: "Goroutine", Count: g*updates + j + 1}
						if g%2 == 0 {
							err = sess.UpdateState(ctx, st)
						} else {
							err = own.UpdateState(ctx, st)
						}
						if err != nil {
							errs <- err
						}
						if _, err := store.Get(ctx, "shared"); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("unfenced concurrent use: %v", err)
			}
			list, err := cp.List(ctx, "shared", pgcheckpoint.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != goroutines*updates+1 {
				t.Fatalf("%d checkpoints, want %d", len(list), goroutines*updates+1)
			}
			newest, err := cp.Get(ctx, "shared", list[0].ID) // List is newest first
			if err != nil {
				t.Fatal(err)
			}
			got, err := store.Get(ctx, "shared")
			if err != nil {
				t.Fatal(err)
			}
			var fromList session.Data[UserState]
			if err := json.Unmarshal(newest.Snapshot, &fromList); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, fromList) || got.State.Name != "Goroutine" || got.State.Count < 1 {
				t.Fatalf("Get returned %+v, newest in List is %+v", *got, fromList)
			}
		})
	}
}

// TestConcurrentSavesFenced: writers that each loaded the session (each with its own fenced Store, as
// separate processes would) save at once; exactly one wins, every other gets a *FenceError (the
// documented error) and wrote nothing, and the newest state is the winner's.
func TestConcurrentSavesFenced(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cp, _, _ := newCheckpointer(t, driver)
			if _, err := session.New(ctx, session.WithID[UserState]("race"), session.WithInitialState(initialState),
				session.WithStore[UserState](pggenkit.New[UserState](cp, pggenkit.Options{Fencing: true}))); err != nil {
				t.Fatal(err)
			}
			const writers = 8
			sessions := make([]*session.Session[UserState], writers)
			for i := range sessions {
				s, err := session.Load(ctx, pggenkit.New[UserState](cp, pggenkit.Options{Fencing: true}), "race")
				if err != nil {
					t.Fatal(err)
				}
				sessions[i] = s
			}
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i, s := range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = s.UpdateState(ctx, UserState{Name: "writer", Count: i})
				}()
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				var fe *pggenkit.FenceError
				switch {
				case err == nil && winner == -1:
					winner = i
				case err == nil:
					t.Fatalf("writers %d and %d both won", winner, i)
				case !errors.As(err, &fe) || !errors.Is(err, pgcheckpoint.ErrConflict) || fe.SessionID != "race":
					t.Fatalf("writer %d: undocumented error %v", i, err)
				}
			}
			if winner == -1 {
				t.Fatal("no writer won")
			}
			list, err := cp.List(ctx, "race", pgcheckpoint.ListOptions{})
			if err != nil || len(list) != 2 {
				t.Fatalf("%d checkpoints (%v), want the initial state and the winner's", len(list), err)
			}
			got, err := pggenkit.New[UserState](cp, pggenkit.Options{}).Get(ctx, "race")
			if err != nil || got.State.Count != winner || got.State.Name != "writer" {
				t.Fatalf("newest %+v (%v), winner %d", got, err, winner)
			}
		})
	}
}

// TestStoreContract mirrors Genkit's TestInMemoryStore_GetSave, _Isolation, _Overwrite, TestLoad_NotFound
// and TestSession_ComplexState against PostgreSQL (Genkit's tests are in package session and drive its
// InMemoryStore only, so they cannot run unmodified against another store).
func TestStoreContract(t *testing.T) {
	ctx := context.Background()
	cp, _, _ := newCheckpointer(t, "pgx")
	store := pggenkit.New[UserState](cp, pggenkit.Options{})

	if d, err := store.Get(ctx, "test-id"); d != nil || err != nil {
		t.Fatalf("Get of an unknown id: %v, %v", d, err)
	}
	var nf *session.NotFoundError
	if _, err := session.Load(ctx, store, "test-id"); !errors.As(err, &nf) || nf.SessionID != "test-id" {
		t.Fatalf("Load of an unknown id: %v", err)
	}
	original := &session.Data[UserState]{ID: "test-id", State: UserState{Name: "Frank", Count: 1,
		Preferences: map[string]string{"a": "b"}, History: []Turn{{"user", "x"}}}}
	if err := store.Save(ctx, "test-id", original); err != nil {
		t.Fatal(err)
	}
	original.State.Name = "Modified" // isolation: the stored state does not change
	got, err := store.Get(ctx, "test-id")
	if err != nil || got.ID != "test-id" || got.State.Name != "Frank" || got.State.History[0].Text != "x" {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	got.State.Name = "Also modified"
	if again, _ := store.Get(ctx, "test-id"); again.State.Name != "Frank" {
		t.Fatalf("isolation: %+v", again)
	}
	if err := store.Save(ctx, "test-id", &session.Data[UserState]{ID: "test-id", State: UserState{Name: "Grace", Count: 2}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.Get(ctx, "test-id"); got.State.Name != "Grace" || got.State.Count != 2 || got.State.Preferences != nil {
		t.Fatalf("overwrite: %+v", got)
	}
	// The zero state (omitted by Genkit's "omitempty"), nil data, a NUL that JSONB refuses.
	if err := store.Save(ctx, "zero", &session.Data[UserState]{ID: "zero"}); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Get(ctx, "zero"); err != nil || !reflect.DeepEqual(got.State, UserState{}) {
		t.Fatalf("zero state: %+v, %v", got, err)
	}
	if err := store.Save(ctx, "nil", nil); !errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) {
		t.Fatalf("nil data: %v", err)
	}
	if err := store.Save(ctx, "nul", &session.Data[UserState]{ID: "nul", State: UserState{Name: "a\x00b"}}); !errors.Is(err, pgcheckpoint.ErrInvalidSnapshot) {
		t.Fatalf("NUL in state: %v", err)
	}
	if err := store.Delete(ctx, "test-id"); err != nil {
		t.Fatal(err)
	}
	if d, err := store.Get(ctx, "test-id"); d != nil || err != nil {
		t.Fatalf("Get after Delete: %v, %v", d, err)
	}
	// Fenced: New with an id that already holds a state refuses to overwrite it.
	fenced := pggenkit.New[UserState](cp, pggenkit.Options{Fencing: true})
	var fe *pggenkit.FenceError
	if _, err := session.New(ctx, session.WithID[UserState]("zero"), session.WithStore[UserState](fenced)); !errors.As(err, &fe) {
		t.Fatalf("fenced New over an existing session: %v", err)
	}
}
