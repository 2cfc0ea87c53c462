package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// redacted is what a Secret prints instead of its value.
const redacted = "[redacted]"

// maxSecretSize bounds a secret file.
const maxSecretSize = 64 << 10

// credentialPrefix marks a scalar secret naming a systemd credential.
const credentialPrefix = "credential:"

// Secret is a password or key. It is given in YAML in one of three forms:
//
//	password: hunter2                # inline (discouraged: the file becomes secret)
//	password: credential:mqtt-pass   # systemd credential: $CREDENTIALS_DIRECTORY/mqtt-pass
//	password: {credential: mqtt-pass}
//	password: {file: /etc/intercomd/mqtt.pass}   # relative to the config file's directory
//
// Files and credentials are read when the configuration is parsed; one
// trailing newline is removed. A Secret never prints its value: String,
// GoString, LogValue and MarshalText all give "[redacted]" (or "" when
// unset). Reveal returns the value.
type Secret struct {
	value  string
	origin string // "", "inline", "file:PATH" or "credential:NAME"
	// unresolved: a credential named but not read (LoadOptions.DeferCredentials).
	unresolved bool
}

// NewSecret returns an inline secret holding value, for configurations built
// in code and for tests.
func NewSecret(value string) Secret {
	if value == "" {
		return Secret{}
	}
	return Secret{value: value, origin: "inline"}
}

// Reveal returns the secret value; "" when unset.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether a value was given (for an unresolved credential,
// whether one was named).
func (s Secret) IsSet() bool { return s.value != "" || s.unresolved }

// Origin describes where the value came from without revealing it:
// "" (unset), "inline", "file:PATH" or "credential:NAME". It is safe to log.
func (s Secret) Origin() string { return s.origin }

// String returns "[redacted]", or "" when unset.
func (s Secret) String() string {
	if !s.IsSet() {
		return ""
	}
	return redacted
}

// GoString returns a redacted Go form, so %#v does not reveal the value.
func (s Secret) GoString() string {
	return fmt.Sprintf("config.Secret{%q}", s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler for JSON and YAML output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Equal reports whether two secrets hold the same value from the same origin.
func (s Secret) Equal(o Secret) bool { return s == o }

// secretReader resolves file and credential secrets.
type secretReader struct {
	dir    string // directory of the config file, for relative paths
	getenv func(string) string
	// deferCreds: with $CREDENTIALS_DIRECTORY unset, a credential is left
	// unresolved and recorded in src instead of failing.
	deferCreds bool
	src        *source
}

// inline interprets a scalar secret: "credential:NAME" or a literal value.
func (r secretReader) inline(v string) (Secret, error) {
	if name, ok := strings.CutPrefix(v, credentialPrefix); ok {
		return r.credential(name)
	}
	return NewSecret(v), nil
}

// credential reads $CREDENTIALS_DIRECTORY/name.
func (r secretReader) credential(name string) (Secret, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return Secret{}, fmt.Errorf("invalid credential name %q", name)
	}
	dir := r.getenv("CREDENTIALS_DIRECTORY")
	if dir == "" && r.deferCreds {
		r.src.unresolved = append(r.src.unresolved, name)
		return Secret{origin: credentialPrefix + name, unresolved: true}, nil
	}
	if dir == "" {
		return Secret{}, fmt.Errorf("credential %q: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=%s:...)", name, name)
	}
	v, err := readSecretFile(filepath.Join(dir, name))
	if err != nil {
		return Secret{}, fmt.Errorf("credential %q: %w", name, err)
	}
	return Secret{value: v, origin: credentialPrefix + name}, nil
}

// file reads a secret file; a relative path is taken from the config's directory.
func (r secretReader) file(path string) (Secret, error) {
	if path == "" || strings.ContainsRune(path, 0) {
		return Secret{}, fmt.Errorf("invalid file name %q", path)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.dir, path)
	}
	v, err := readSecretFile(path)
	if err != nil {
		return Secret{}, err
	}
	return Secret{value: v, origin: "file:" + path}, nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretSize {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxSecretSize)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", errors.New(path + ": empty")
	}
	return v, nil
}
