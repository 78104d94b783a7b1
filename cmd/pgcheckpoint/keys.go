package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ziroagent/pgcheckpoint"
)

// keysEnv holds the key ring (pgcheckpoint.ParseKeyRing's format: "id:base64" entries, the current
// key first) when --keys-file does not name a file.
const keysEnv = "PGCHECKPOINT_KEYS"

// loadKeys returns the key ring of --keys-file, else of $PGCHECKPOINT_KEYS, else nil (no encryption).
// Every secret in the text is remembered for redact first, so no message can show one; the ring's
// own errors name entries by position and id only.
func loadKeys(keysFile string) (pgcheckpoint.KeyProvider, error) {
	text, from := os.Getenv(keysEnv), "$"+keysEnv
	if keysFile != "" {
		b, err := os.ReadFile(keysFile)
		if err != nil {
			return nil, usageErrorf("--keys-file: %v", err)
		}
		text, from = string(b), "--keys-file "+keysFile
	}
	if strings.TrimSpace(text) == "" {
		if keysFile != "" {
			return nil, usageErrorf("--keys-file %s holds no key (make one with pgcheckpoint keygen)", keysFile)
		}
		return nil, nil
	}
	rememberKeySecrets(text)
	ring, err := pgcheckpoint.ParseKeyRing(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return ring, nil
}

// rememberKeySecrets adds the secret part of every entry of a key ring's text to the secrets redact
// removes from messages.
func rememberKeySecrets(text string) {
	secrets.Lock()
	defer secrets.Unlock()
	for _, e := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if _, s, ok := strings.Cut(e, ":"); ok && len(strings.TrimSpace(s)) >= 3 {
			secrets.values = append(secrets.values, strings.TrimSpace(s))
		}
	}
}
