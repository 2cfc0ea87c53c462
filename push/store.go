package push

import (
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/intercomd/intercomd/internal/statefile"
	"github.com/intercomd/intercomd/usersig"
)

// Bounds of a Store.
const (
	// MaxPerUser is how many devices of one user may subscribe; a further
	// device replaces the user's oldest subscription.
	MaxPerUser = 8
	// MaxTotal bounds the subscriptions of all users together.
	MaxTotal = 256
	// maxEndpoint bounds an endpoint URL (push services use about 200
	// to 500 characters).
	maxEndpoint = 2048
)

// Errors of Store.Add; check them with errors.Is.
var (
	ErrBadSubscription = errors.New("push: bad subscription")
	ErrStoreFull       = errors.New("push: too many subscriptions on this device")
)

// DefaultServices are the push services a subscription may point at: the
// ones of Chrome and Android (FCM), Firefox, Safari and iOS, and Edge. A
// subscription elsewhere is refused, so that a signed-in user cannot make
// the device post to hosts of their choosing.
var DefaultServices = []string{
	"fcm.googleapis.com", "android.googleapis.com",
	"push.services.mozilla.com",
	"push.apple.com",
	"notify.windows.com",
}

// Subscription is one browser's push subscription (PushSubscription.toJSON
// in the Push API) and whose it is.
type Subscription struct {
	User     string    `json:"user"`
	Device   string    `json:"device"`
	Endpoint string    `json:"endpoint"`
	P256dh   string    `json:"p256dh"`
	Auth     string    `json:"auth"`
	Added    time.Time `json:"added"`
}

// StoreOptions configures a Store.
type StoreOptions struct {
	// Path is the file the subscriptions live in; "" keeps them in memory.
	Path string
	// Services are the host names (or parent domains) an endpoint may
	// name; nil means DefaultServices.
	Services []string
	// Insecure admits any host and http:// endpoints (tests with a local
	// push service).
	Insecure bool
}

// Store keeps the subscriptions, one per (user, device).
type Store struct {
	opts StoreOptions
	mu   sync.Mutex
	subs []Subscription
}

type storeFile struct {
	Version       int            `json:"version"`
	Subscriptions []Subscription `json:"subscriptions"`
}

// OpenStore loads the subscriptions from opts.Path (none when the file does
// not exist). A file that cannot be read is an error: it is never
// overwritten with an empty list.
func OpenStore(opts StoreOptions) (*Store, error) {
	if opts.Services == nil {
		opts.Services = DefaultServices
	}
	s := &Store{opts: opts}
	if opts.Path == "" {
		return s, nil
	}
	b, err := os.ReadFile(opts.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("push subscriptions: %w", err)
	}
	var f storeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("push subscriptions %s: %w", opts.Path, err)
	}
	for _, sub := range f.Subscriptions {
		if s.check(sub) == nil && len(s.subs) < MaxTotal {
			s.subs = append(s.subs, sub)
		}
	}
	return s, nil
}

// check validates a subscription: IDs, an https endpoint at a known push
// service, and keys of the right form (a P-256 point and 16 bytes).
func (s *Store) check(sub Subscription) error {
	if !usersig.ValidID(sub.User) {
		return fmt.Errorf("%w: user", ErrBadSubscription)
	}
	if !usersig.ValidID(sub.Device) {
		return fmt.Errorf("%w: device must be 1 to 64 letters, digits, - or _", ErrBadSubscription)
	}
	if err := s.checkEndpoint(sub.Endpoint); err != nil {
		return err
	}
	p, err := decodeKey(sub.P256dh)
	if err == nil {
		_, err = ecdh.P256().NewPublicKey(p)
	}
	if err != nil {
		return fmt.Errorf("%w: keys.p256dh is not a P-256 public key", ErrBadSubscription)
	}
	if a, err := decodeKey(sub.Auth); err != nil || len(a) != 16 {
		return fmt.Errorf("%w: keys.auth is not 16 bytes of base64url", ErrBadSubscription)
	}
	return nil
}

func (s *Store) checkEndpoint(e string) error {
	if len(e) > maxEndpoint {
		return fmt.Errorf("%w: endpoint longer than %d characters", ErrBadSubscription, maxEndpoint)
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: endpoint is not an absolute URL", ErrBadSubscription)
	}
	if s.opts.Insecure && (u.Scheme == "http" || u.Scheme == "https") {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: endpoint must be https", ErrBadSubscription)
	}
	host := strings.ToLower(u.Hostname())
	for _, svc := range s.opts.Services {
		if host == svc || strings.HasSuffix(host, "."+svc) {
			return nil
		}
	}
	return fmt.Errorf("%w: endpoint host %s is not a known push service", ErrBadSubscription, host)
}

// Add stores sub (Added is set to now), replacing the subscription of the
// same user and device and, when the user already has MaxPerUser, the
// user's oldest one. It returns ErrBadSubscription for an invalid
// subscription and ErrStoreFull past MaxTotal.
func (s *Store) Add(sub Subscription, now time.Time) error {
	if err := s.check(sub); err != nil {
		return err
	}
	sub.Added = now.UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(s.subs), func(o Subscription) bool {
		return (o.User == sub.User && o.Device == sub.Device) || o.Endpoint == sub.Endpoint
	})
	var mine []int
	for i, o := range next {
		if o.User == sub.User {
			mine = append(mine, i)
		}
	}
	if len(mine) >= MaxPerUser {
		oldest := mine[0]
		for _, i := range mine {
			if next[i].Added.Before(next[oldest].Added) {
				oldest = i
			}
		}
		next = slices.Delete(next, oldest, oldest+1)
	}
	if len(next) >= MaxTotal {
		return ErrStoreFull
	}
	return s.commit(append(next, sub))
}

// Remove drops the subscription of user's device; it reports whether there
// was one.
func (s *Store) Remove(user, device string) (bool, error) {
	return s.drop(func(o Subscription) bool { return o.User == user && o.Device == device })
}

// RemoveEndpoint drops the subscription with this endpoint (the push
// service said it is gone).
func (s *Store) RemoveEndpoint(endpoint string) (bool, error) {
	return s.drop(func(o Subscription) bool { return o.Endpoint == endpoint })
}

// RemoveUserBefore drops the subscriptions of user added before t (the
// user's tokens were revoked at t).
func (s *Store) RemoveUserBefore(user string, t time.Time) (bool, error) {
	return s.drop(func(o Subscription) bool { return o.User == user && o.Added.Before(t) })
}

func (s *Store) drop(match func(Subscription) bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(s.subs), match)
	if len(next) == len(s.subs) {
		return false, nil
	}
	return true, s.commit(next)
}

// commit writes next and, once it is on disk, makes it current; s.mu held.
func (s *Store) commit(next []Subscription) error {
	if s.opts.Path != "" {
		b, _ := json.MarshalIndent(storeFile{Version: 1, Subscriptions: next}, "", "  ")
		if err := statefile.Write(s.opts.Path, append(b, '\n'), 0o600); err != nil {
			return fmt.Errorf("push subscriptions: %w", err)
		}
	}
	s.subs = next
	return nil
}

// User returns a copy of user's subscriptions.
func (s *Store) User(user string) []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Subscription
	for _, o := range s.subs {
		if o.User == user {
			out = append(out, o)
		}
	}
	return out
}

// Len is the number of subscriptions.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Users lists the users with at least one subscription.
func (s *Store) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.subs {
		if !slices.Contains(out, o.User) {
			out = append(out, o.User)
		}
	}
	return out
}
