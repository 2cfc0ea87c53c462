package usersig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	t0         = time.Unix(1_700_000_000, 0)
)

func TestSignVerifyRoundTrip(t *testing.T) {
	tok, err := Sign(testSecret, "alice_1-x", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1.alice_1-x.1700003600."; !strings.HasPrefix(tok, want) {
		t.Fatalf("token %q does not start with %q", tok, want)
	}
	c, err := Verify(testSecret, tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "alice_1-x" || !c.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("claims = %+v", c)
	}
}

func TestVerifyErrors(t *testing.T) {
	good, err := Sign(testSecret, "alice", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	otherSecret := []byte("fedcba9876543210fedcba9876543210")
	forged, err := Sign(otherSecret, "alice", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	body, sig, _ := cutLast(good, '.')
	// Same MAC, different user or expiry: the MAC no longer matches.
	swappedUser := strings.Replace(body, "alice", "bob", 1) + "." + sig
	laterExpiry := strings.Replace(body, "1700000060", "1700099999", 1) + "." + sig
	first := "A"
	if sig[0] == 'A' {
		first = "B"
	}
	flipped := body + "." + first + sig[1:]

	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"empty", "", t0, ErrMalformed},
		{"no dots", "garbage", t0, ErrMalformed},
		{"wrong version", "v2" + good[2:], t0, ErrMalformed},
		{"short mac", good[:len(good)-1], t0, ErrMalformed},
		{"extra field", "v1.x." + good[3:], t0, ErrMalformed},
		{"non canonical expiry", strings.Replace(good, ".1700000060.", ".01700000060.", 1), t0, ErrMalformed},
		{"signed expiry", strings.Replace(good, ".1700000060.", ".+1700000060.", 1), t0, ErrMalformed},
		{"mac not base64url", body + "." + strings.Repeat("/", macLen), t0, ErrMalformed},
		{"bad user", "v1.al ice.1700000060." + sig, t0, ErrBadUser},
		{"long user", "v1." + strings.Repeat("a", 65) + ".1700000060." + sig, t0, ErrBadUser},
		{"other secret", forged, t0, ErrBadSignature},
		{"user swapped", swappedUser, t0, ErrBadSignature},
		{"expiry extended", laterExpiry, t0, ErrBadSignature},
		{"mac bit flipped", flipped, t0, ErrBadSignature},
		{"expired exactly", good, t0.Add(time.Minute), ErrExpired},
		{"expired later", good, t0.Add(time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(testSecret, tt.token, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q) error = %v, want %v", tt.token, err, tt.want)
			}
		})
	}
	if _, err := Verify(testSecret, good, t0.Add(59*time.Second)); err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	if _, err := Sign(testSecret[:MinSecretLen-1], "alice", t0); !errors.Is(err, ErrWeakSecret) {
		t.Errorf("short secret: %v", err)
	}
	for _, u := range []string{"", "a.b", "a/b", "a+b", "a#", "é", strings.Repeat("x", 65)} {
		if _, err := Sign(testSecret, u, t0); !errors.Is(err, ErrBadUser) {
			t.Errorf("Sign(%q) error = %v, want ErrBadUser", u, err)
		}
	}
	if _, err := Verify(nil, "v1.a.1.x", t0); !errors.Is(err, ErrWeakSecret) {
		t.Errorf("verify with empty secret: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for _, s := range []string{"a", "Z", "0", "_", "-", "door-1", strings.Repeat("x", 64)} {
		if !ValidID(s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	for _, s := range []string{"", " ", "a b", "a/b", "+", "#", "a.b", "$SYS", "ü", strings.Repeat("x", 65)} {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	s1, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != SecretLen {
		t.Fatalf("len = %d", len(s1))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v", st.Mode().Perm())
	}
	s2, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(s1) != string(s2) {
		t.Fatal("second load returned a different secret")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(path); !errors.Is(err, ErrSecretFileMode) {
		t.Fatalf("world-readable file: %v", err)
	}

	weak := filepath.Join(t.TempDir(), "weak")
	if err := os.WriteFile(weak, []byte("00ff\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(weak); !errors.Is(err, ErrWeakSecret) {
		t.Fatalf("short secret file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, []byte("not hex at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecret(junk); err == nil {
		t.Fatal("non-hex secret file accepted")
	}
	if _, err := LoadOrCreateSecret(filepath.Join(t.TempDir(), "missing-dir", "secret")); err == nil {
		t.Fatal("secret in a missing directory accepted")
	}
}

func TestLoadOrCreateSecretRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = LoadOrCreateSecret(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if string(got[i]) != string(got[0]) {
			t.Fatalf("creator %d got a different secret", i)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the secret", len(entries))
	}
}

func FuzzVerify(f *testing.F) {
	good, _ := Sign(testSecret, "alice", t0.Add(time.Hour))
	f.Add(good)
	f.Add("")
	f.Add("v1...")
	f.Add("v1.a.1." + strings.Repeat("A", macLen))
	f.Add("v1.alice.99999999999999999999." + strings.Repeat("A", macLen))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := Verify(testSecret, token, t0)
		if err != nil {
			for _, sentinel := range []error{ErrMalformed, ErrBadUser, ErrBadSignature, ErrExpired} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("Verify(%q) error %v wraps no documented sentinel", token, err)
		}
		// Accepted tokens are canonical: re-signing the claims gives the same string.
		again, err := Sign(testSecret, c.User, c.Expires)
		if err != nil {
			t.Fatalf("re-sign accepted claims %+v: %v", c, err)
		}
		if again != token {
			t.Fatalf("accepted %q but canonical form is %q", token, again)
		}
	})
}
