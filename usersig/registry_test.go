package usersig

import (
	"path/filepath"
	"testing"
	"time"
)

// TestRegistryRevocation: revoking a device refuses its tokens only;
// revoking a user refuses every token of theirs issued until then,
// registered or not, and none issued after; a second process sees it.
func TestRegistryRevocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	r, err := OpenRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	claims := func(u string) Claims { return Claims{User: u, Expires: now.Add(time.Hour)} }
	for _, a := range [][3]string{{"tok-phone", "alice", "phone"}, {"tok-tablet", "alice", "tablet"}, {"tok-bob", "bob", "phone"}} {
		if err := r.Add(a[0], a[1], a[2], now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := r.Revoke("alice", "phone", now); n != 1 || err != nil {
		t.Fatalf("revoke alice's phone: %d, %v", n, err)
	}
	other, err := OpenRegistry(path) // the daemon, reading what the command wrote
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]bool{"tok-phone": false, "tok-tablet": true, "tok-bob": true, "unregistered": true} {
		u := "alice"
		if tok == "tok-bob" {
			u = "bob"
		}
		if ok := other.Check(tok, claims(u)) == ""; ok != want {
			t.Errorf("after revoking alice's phone, %s accepted %v, want %v", tok, ok, want)
		}
	}
	if _, err := r.Revoke("alice", "", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("tok-new", "alice", "phone", now.Add(2*time.Minute), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := other.Reload(); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]bool{"tok-tablet": false, "unregistered": false, "tok-new": true, "tok-bob": true} {
		u := "alice"
		if tok == "tok-bob" {
			u = "bob"
		}
		if ok := other.Check(tok, claims(u)) == ""; ok != want {
			t.Errorf("after revoking alice, %s accepted %v, want %v", tok, ok, want)
		}
	}
	// Bounded per user.
	for i := range MaxPerUser {
		err = r.Add("many"+string(rune('a'+i)), "carol", "", now, now.Add(time.Hour))
	}
	if err != nil || r.Add("one-more", "carol", "", now, now.Add(time.Hour)) != ErrTooManyTokens {
		t.Errorf("carol's %d+1st token: want ErrTooManyTokens", MaxPerUser)
	}
}
