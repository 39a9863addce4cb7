package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/veilgw/veil/store"
)

// tokenRecord is a stored API token. On-disk format, versioned.
type tokenRecord struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	Role      Role      `json:"role"`
	Name      string    `json:"name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// principal is who is calling.
type principal struct {
	tokenID string
	role    Role
}

// bootstrapTokenID names the environment's admin token in logs.
const bootstrapTokenID = "bootstrap"

// tokens authenticates bearer tokens. The table holds hashes only.
type tokens struct {
	db        *store.DB
	bootstrap [32]byte // sha256 of the bootstrap token; zero if none
	hasBoot   bool

	mu     sync.RWMutex
	byHash map[[32]byte]tokenRecord
}

func newTokens(db *store.DB, bootstrap string) (*tokens, error) {
	t := &tokens{db: db, byHash: make(map[[32]byte]tokenRecord)}
	if bootstrap != "" {
		t.bootstrap = sha256.Sum256([]byte(bootstrap))
		t.hasBoot = true
	}
	err := db.Scan([]byte(store.PrefixToken), nil, func(k, v []byte) (bool, error) {
		parts, ok := store.SplitKey(k, store.PrefixToken, 1)
		raw, err := hex.DecodeString(parts[0])
		if !ok || err != nil || len(raw) != 32 {
			return true, nil
		}
		var rec tokenRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("decoding token %s: %w", rec.ID, err)
		}
		t.byHash[[32]byte(raw)] = rec
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading tokens: %w", err)
	}
	return t, nil
}

// authenticate reads "Authorization: Bearer <token>".
func (t *tokens) authenticate(r *http.Request) (principal, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return principal{}, errUnauthorized
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	if t.hasBoot && subtle.ConstantTimeCompare(sum[:], t.bootstrap[:]) == 1 {
		return principal{tokenID: bootstrapTokenID, role: RoleAdmin}, nil
	}
	// A map lookup on a SHA-256 of the secret leaks nothing useful through
	// timing: finding a hash prefix does not help find the token.
	t.mu.RLock()
	rec, ok := t.byHash[sum]
	t.mu.RUnlock()
	if !ok {
		return principal{}, errUnauthorized
	}
	return principal{tokenID: rec.ID, role: rec.Role}, nil
}

// create makes a token, stores its hash and returns the secret once.
func (t *tokens) create(ctx context.Context, role Role, name string, now time.Time) (Token, error) {
	var raw [32]byte
	rand.Read(raw[:])
	secret := "veil_" + base64.RawURLEncoding.EncodeToString(raw[:])
	var idb [8]byte
	rand.Read(idb[:])
	rec := tokenRecord{V: 1, ID: "tok_" + hex.EncodeToString(idb[:]), Role: role, Name: name, CreatedAt: now.UTC()}
	sum := sha256.Sum256([]byte(secret))
	b := t.db.NewBatch()
	b.SetJSON(store.Key(store.PrefixToken, hex.EncodeToString(sum[:])), rec)
	if err := b.Commit(); err != nil {
		return Token{}, err
	}
	t.mu.Lock()
	t.byHash[sum] = rec
	t.mu.Unlock()
	tok := tokenOut(rec)
	tok.Token = secret
	return tok, nil
}

func (t *tokens) list() []Token {
	t.mu.RLock()
	out := make([]Token, 0, len(t.byHash))
	for _, rec := range t.byHash {
		out = append(out, tokenOut(rec))
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Token) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// revoke deletes the token with id.
func (t *tokens) revoke(ctx context.Context, id string) error {
	t.mu.RLock()
	var sum [32]byte
	found := false
	for h, rec := range t.byHash {
		if rec.ID == id {
			sum, found = h, true
			break
		}
	}
	t.mu.RUnlock()
	if !found {
		return fmt.Errorf("%w: no token %q", errNotFound, id)
	}
	b := t.db.NewBatch()
	b.Delete(store.Key(store.PrefixToken, hex.EncodeToString(sum[:])))
	if err := b.Commit(); err != nil {
		return err
	}
	t.mu.Lock()
	delete(t.byHash, sum)
	t.mu.Unlock()
	return nil
}

func tokenOut(rec tokenRecord) Token {
	return Token{ID: rec.ID, Role: rec.Role, Name: rec.Name, CreatedAt: rec.CreatedAt}
}
