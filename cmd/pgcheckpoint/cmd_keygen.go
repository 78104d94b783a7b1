package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/ziroagent/pgcheckpoint"
)

// cmdKeygen prints a new encryption key, "id:base64" with KeySize random bytes from crypto/rand: one
// entry of a key ring ($PGCHECKPOINT_KEYS, --keys-file).
func cmdKeygen(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "keygen")
	pos, err := f.parse(args, 0, 1)
	if err != nil {
		return err
	}
	id := "k" + time.Now().UTC().Format("20060102T150405")
	if len(pos) == 1 {
		id = pos[0]
	}
	secret := make([]byte, pgcheckpoint.KeySize)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (it crashes the program instead)
	if _, err := pgcheckpoint.NewKey(id, secret); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s:%s\n", id, base64.StdEncoding.EncodeToString(secret))
	return err
}
