// Package usersig signs and verifies intercomd user tokens: short strings that
// prove a user ID was admitted by whoever holds the device secret, until an
// expiry time. They play the role of TRTC's "UserSig": the MQTT broker takes the
// user ID as username and the token as password.
//
// A token reads
//
//	v1.<user>.<unix-expiry>.<mac>
//
// where <user> matches ^[A-Za-z0-9_-]{1,64}$, <unix-expiry> is the expiry in
// whole seconds since the Unix epoch in canonical decimal, and <mac> is the
// unpadded base64url HMAC-SHA256 of "v1.<user>.<unix-expiry>" keyed with the
// secret. Every token has exactly one valid spelling, so a verified token can be
// compared as a string.
//
// The package is pure: it reads no clock (callers pass now), keeps no state and
// is safe for concurrent use. Only LoadOrCreateSecret touches the file system.
//
// A Raspberry Pi boots with its clock near 1970 until NTP has synchronised, so
// an unsynchronised verifier accepts tokens that have in fact expired; it never
// refuses a valid one for that reason.
package usersig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/intercomd/intercomd/internal/statefile"
)

// Sentinel errors returned (wrapped) by Sign, Verify and the secret helpers.
// Check them with errors.Is.
var (
	// ErrMalformed: the token does not have the v1.<user>.<expiry>.<mac> shape.
	ErrMalformed = errors.New("usersig: malformed token")
	// ErrBadSignature: the MAC does not match; the token was not signed with
	// this secret, or was altered.
	ErrBadSignature = errors.New("usersig: bad signature")
	// ErrExpired: the token is authentic but its expiry is not after now.
	ErrExpired = errors.New("usersig: token expired")
	// ErrBadUser: the user ID does not match ^[A-Za-z0-9_-]{1,64}$.
	ErrBadUser = errors.New("usersig: invalid user id")
	// ErrWeakSecret: the secret is shorter than MinSecretLen bytes.
	ErrWeakSecret = errors.New("usersig: secret too short")
	// ErrSecretFileMode: the secret file is readable or writable by group or others.
	ErrSecretFileMode = errors.New("usersig: secret file permissions too open")
)

const (
	// MaxIDLen is the longest valid user or group ID.
	MaxIDLen = 64
	// MinSecretLen is the shortest secret Sign and Verify accept.
	MinSecretLen = 16
	// SecretLen is the length of secrets made by NewSecret.
	SecretLen = 32

	version = "v1"
	macLen  = 43 // unpadded base64 of a 32-byte HMAC-SHA256
)

// Claims is what a verified token asserts.
type Claims struct {
	User    string
	Expires time.Time
}

// ValidID reports whether s is a valid user or group ID: 1 to 64 characters,
// each an ASCII letter, digit, '_' or '-'.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Sign returns a token for user valid until expires (truncated to the second).
func Sign(secret []byte, user string, expires time.Time) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("sign token: %w", ErrWeakSecret)
	}
	if !ValidID(user) {
		return "", fmt.Errorf("sign token: %w", ErrBadUser)
	}
	exp := expires.Unix()
	if exp <= 0 {
		return "", fmt.Errorf("sign token: expiry %v before 1970: %w", expires, ErrMalformed)
	}
	body := version + "." + user + "." + strconv.FormatInt(exp, 10)
	return body + "." + base64.RawURLEncoding.EncodeToString(mac(secret, body)), nil
}

// Verify checks token against secret at time now and returns its claims. The
// errors wrap ErrMalformed, ErrBadUser, ErrBadSignature, ErrExpired or
// ErrWeakSecret. The signature is checked in constant time before the expiry, so
// ErrExpired is only returned for authentic tokens.
func Verify(secret []byte, token string, now time.Time) (Claims, error) {
	if len(secret) < MinSecretLen {
		return Claims{}, fmt.Errorf("verify token: %w", ErrWeakSecret)
	}
	c, body, got, err := parse(token)
	if err != nil {
		return Claims{}, fmt.Errorf("verify token: %w", err)
	}
	if !hmac.Equal(got, mac(secret, body)) {
		return Claims{}, fmt.Errorf("verify token: %w", ErrBadSignature)
	}
	if !now.Before(c.Expires) {
		return Claims{}, fmt.Errorf("verify token for %s (expired %s): %w", c.User, c.Expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	return c, nil
}

// Inspect returns what token claims without checking its signature or its
// expiry: for a holder of a token, which has no secret, to explain why it was
// refused. Never authorise anything on what Inspect returns. The errors wrap
// ErrMalformed or ErrBadUser.
func Inspect(token string) (Claims, error) {
	c, _, _, err := parse(token)
	if err != nil {
		return Claims{}, fmt.Errorf("inspect token: %w", err)
	}
	return c, nil
}

// parse splits token into its claims, the signed body and the MAC.
func parse(token string) (c Claims, body string, sum []byte, err error) {
	body, sig, ok := cutLast(token, '.')
	if !ok || len(sig) != macLen {
		return Claims{}, "", nil, ErrMalformed
	}
	parts := strings.Split(body, ".")
	if len(parts) != 3 || parts[0] != version {
		return Claims{}, "", nil, ErrMalformed
	}
	user, expText := parts[1], parts[2]
	if !ValidID(user) {
		return Claims{}, "", nil, ErrBadUser
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != expText {
		return Claims{}, "", nil, fmt.Errorf("expiry: %w", ErrMalformed)
	}
	sum, err = base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return Claims{}, "", nil, fmt.Errorf("mac: %w", ErrMalformed)
	}
	return Claims{User: user, Expires: time.Unix(exp, 0)}, body, sum, nil
}

// NewSecret returns SecretLen fresh random bytes from crypto/rand.
func NewSecret() ([]byte, error) {
	b := make([]byte, SecretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("new secret: %w", err)
	}
	return b, nil
}

// LoadOrCreateSecret reads the hex-encoded secret stored at path, or, when the
// file does not exist, creates it with mode 0600 holding a new secret. It
// refuses a file that group or others may access (ErrSecretFileMode) and a
// secret shorter than MinSecretLen (ErrWeakSecret). Creation is atomic: two
// processes racing to create the file end up with the same secret.
func LoadOrCreateSecret(path string) ([]byte, error) {
	secret, err := loadSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	secret, err = NewSecret()
	if err != nil {
		return nil, err
	}
	// Write a private temporary file, then hard-link it into place: the link
	// fails if another process won the race, and readers never see a partly
	// written file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return nil, fmt.Errorf("create secret file: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := statefile.OwnLikeDir(tmp, filepath.Dir(path))
	if werr == nil {
		_, werr = tmp.WriteString(hex.EncodeToString(secret) + "\n")
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return nil, fmt.Errorf("write secret file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadSecret(path)
		}
		return nil, fmt.Errorf("create secret file: %w", err)
	}
	return secret, nil
}

func loadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open secret file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat secret file %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s has mode %v, want 0600: %w", path, st.Mode().Perm(), ErrSecretFileMode)
	}
	text, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read secret file %s: %w", path, err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("decode secret file %s: %w", path, err)
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("secret file %s: %w", path, ErrWeakSecret)
	}
	return secret, nil
}

func mac(secret []byte, body string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(body))
	return h.Sum(nil)
}

func cutLast(s string, sep byte) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
