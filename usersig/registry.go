package usersig

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/intercomd/intercomd/internal/statefile"
)

// Bounds of a Registry.
const (
	// MaxPerUser bounds the live tokens registered for one user; renewing
	// past it is refused (ErrTooManyTokens).
	MaxPerUser = 16
	// maxEntries bounds the whole registry; expired entries go first.
	maxEntries = 2048
)

// ErrTooManyTokens: the user has MaxPerUser live tokens already.
var ErrTooManyTokens = errors.New("usersig: too many tokens for this user")

// Issued is one issued token as the registry keeps it: never the token
// itself, only its ID (the first 16 bytes of its SHA-256, in hex).
type Issued struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Device   string    `json:"device,omitempty"`
	Issued   time.Time `json:"issued"`
	Expires  time.Time `json:"expires"`
	LastSeen time.Time `json:"-"` // from the daemon's own file
	Revoked  bool      `json:"revoked,omitempty"`
}

type registryFile struct {
	Version int       `json:"version"`
	Tokens  []*Issued `json:"tokens"`
	// RevokedUsers: every token of the user issued before this time is
	// refused, registered or not.
	RevokedUsers map[string]time.Time `json:"revoked_users,omitempty"`
}

// Registry is the list of issued tokens in the state directory: who holds
// them, until when, when each was last used, and which are revoked. The
// daemon and `intercomd usersig` share its file; Reload picks up another
// process's changes. Only `intercomd usersig` and the token renewal write
// the file; the daemon keeps the last-seen times in a file of its own
// (<path>.seen), so that it never writes over a revocation. Safe for
// concurrent use.
type Registry struct {
	path  string
	mu    sync.Mutex
	f     registryFile
	mod   time.Time
	size  int64
	seen  map[string]time.Time // token ID -> last seen
	dirty bool                 // seen changed since the last Flush
}

// TokenID is the registry's name for a token.
func TokenID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:16])
}

// OpenRegistry reads the registry at path (empty when the file does not
// exist).
func OpenRegistry(path string) (*Registry, error) {
	r := &Registry{path: path, seen: map[string]time.Time{}}
	if b, err := os.ReadFile(path + ".seen"); err == nil {
		_ = json.Unmarshal(b, &r.seen)
	}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload re-reads the file if it changed since it was read; it reports
// whether it did.
func (r *Registry) Reload() error {
	st, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.ModTime().Equal(r.mod) && st.Size() == r.size {
		return nil // (a file system's clock may be coarse: the size tells too)
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	var f registryFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("token registry %s: %w", r.path, err)
	}
	r.f, r.mod, r.size = f, st.ModTime(), st.Size()
	return nil
}

// save writes the registry; r.mu held.
func (r *Registry) save() error {
	r.f.Version = 1
	b, _ := json.MarshalIndent(r.f, "", "  ")
	if err := statefile.Write(r.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	if st, err := os.Stat(r.path); err == nil {
		r.mod, r.size = st.ModTime(), st.Size()
	}
	return nil
}

// Add registers token, issued at now for user's device until expires.
// Expired entries are dropped; ErrTooManyTokens when the user has
// MaxPerUser live ones.
func (r *Registry) Add(token, user, device string, now, expires time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Tokens = slices.DeleteFunc(r.f.Tokens, func(t *Issued) bool { return !t.Expires.After(now) })
	live := 0
	for _, t := range r.f.Tokens {
		if t.User == user && !t.Revoked {
			live++
		}
	}
	if live >= MaxPerUser {
		return ErrTooManyTokens
	}
	if len(r.f.Tokens) >= maxEntries {
		return fmt.Errorf("token registry full (%d tokens)", maxEntries)
	}
	r.f.Tokens = append(r.f.Tokens, &Issued{ID: TokenID(token), User: user, Device: device, Issued: now.UTC(), Expires: expires.UTC()})
	return r.save()
}

// Revoke revokes the tokens of user's device, or with device "" every
// token of user (including tokens issued before the registry kept them).
// It returns how many registered tokens it revoked.
func (r *Registry) Revoke(user, device string, now time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.f.Tokens {
		if t.User == user && (device == "" || t.Device == device) && !t.Revoked {
			t.Revoked = true
			n++
		}
	}
	if device == "" {
		if r.f.RevokedUsers == nil {
			r.f.RevokedUsers = map[string]time.Time{}
		}
		r.f.RevokedUsers[user] = now.UTC()
	}
	return n, r.save()
}

// Check returns "" when a verified token (claims c) may be used, else the
// reason it may not.
func (r *Registry) Check(token string, c Claims) string {
	id := TokenID(token)
	r.mu.Lock()
	defer r.mu.Unlock()
	var entry *Issued
	for _, t := range r.f.Tokens {
		if t.ID == id {
			entry = t
			break
		}
	}
	if entry != nil && entry.Revoked {
		return "token revoked"
	}
	if at, ok := r.f.RevokedUsers[c.User]; ok && (entry == nil || !entry.Issued.After(at)) {
		return "the user's tokens were revoked"
	}
	return ""
}

// Lookup returns the entry of token, if registered.
func (r *Registry) Lookup(token string) (Issued, bool) {
	id := TokenID(token)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.f.Tokens {
		if t.ID == id {
			return *t, true
		}
	}
	return Issued{}, false
}

// Seen notes that token was used at now (kept in memory; Flush writes it).
func (r *Registry) Seen(token string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[TokenID(token)] = now.UTC()
	r.dirty = true
}

// Flush writes the last-seen times of registered tokens to <path>.seen,
// if any changed.
func (r *Registry) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dirty {
		return nil
	}
	r.dirty = false
	keep := map[string]time.Time{}
	for _, t := range r.f.Tokens {
		if at, ok := r.seen[t.ID]; ok {
			keep[t.ID] = at
		}
	}
	r.seen = keep
	b, _ := json.Marshal(keep)
	return statefile.Write(r.path+".seen", b, 0o600)
}

// List returns a copy of the entries, oldest first.
func (r *Registry) List() []Issued {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Issued, 0, len(r.f.Tokens))
	for _, t := range r.f.Tokens {
		e := *t
		e.LastSeen = r.seen[t.ID]
		out = append(out, e)
	}
	return out
}

// RevokedUsers returns the users whose every token was revoked, and when.
func (r *Registry) RevokedUsers() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Time, len(r.f.RevokedUsers))
	for u, at := range r.f.RevokedUsers {
		out[u] = at
	}
	return out
}
