package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secretValue = "s3cr3t-Value-that-must-not-leak"

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecretForms(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(creds, "mqtt-pass"), secretValue+"\n")
	writeFile(t, filepath.Join(dir, "token.key"), secretValue+"\r\n")
	writeFile(t, filepath.Join(dir, "abs.key"), secretValue)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)

	tests := []struct {
		name, yaml, origin string
	}{
		{"inline", secretValue, "inline"},
		{"credential scalar", "credential:mqtt-pass", "credential:mqtt-pass"},
		{"credential mapping", "{credential: mqtt-pass}", "credential:mqtt-pass"},
		{"relative file", "{file: token.key}", "file:" + filepath.Join(dir, "token.key")},
		{"absolute file", "{file: " + filepath.Join(dir, "abs.key") + "}", "file:" + filepath.Join(dir, "abs.key")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := "version: 1\nsignaling:\n  embedded:\n    token_secret: " + tt.yaml + "\n"
			c, err := Parse(filepath.Join(dir, "intercomd.yaml"), []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			s := c.Signaling.Embedded.TokenSecret
			if s.Reveal() != secretValue || !s.IsSet() {
				t.Errorf("Reveal() = %q, want the secret with the trailing newline removed", s.Reveal())
			}
			if s.Origin() != tt.origin {
				t.Errorf("Origin() = %q, want %q", s.Origin(), tt.origin)
			}
		})
	}
}

func TestSecretErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty"), "\n")
	writeFile(t, filepath.Join(dir, "huge"), strings.Repeat("x", maxSecretSize+1))
	name := filepath.Join(dir, "c.yaml")
	prefix := name + ":4: signaling.external.password: "

	tests := []struct {
		name, yaml, credDir, want string
	}{
		{"missing file", "{file: nope}", "", prefix + "open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"empty file", "{file: empty}", "", prefix + filepath.Join(dir, "empty") + ": empty"},
		{"huge file", "{file: huge}", "", prefix + filepath.Join(dir, "huge") + ": larger than 65536 bytes"},
		{"no credentials directory", "credential:pw", "", prefix + `credential "pw": $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=pw:...)`},
		{"missing credential", "credential:pw", dir, prefix + `credential "pw": open ` + filepath.Join(dir, "pw") + ": no such file or directory"},
		{"credential escapes", "{credential: ../etc/passwd}", dir, prefix + `invalid credential name "../etc/passwd"`},
		{"credential empty", `"credential:"`, dir, prefix + `invalid credential name ""`},
		{"neither form", "{}", dir, prefix + "give exactly one of file or credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CREDENTIALS_DIRECTORY", tt.credDir)
			y := "version: 1\nsignaling:\n  external:\n    password: " + tt.yaml + "\n    username: u\n"
			_, err := Parse(name, []byte(y))
			if e := only(t, err); e.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", e, tt.want)
			}
		})
	}
}

func TestSecretEmptyInlineIsUnset(t *testing.T) {
	c, err := Parse("f.yaml", []byte("version: 1\nsignaling: {embedded: {token_secret: \"\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Signaling.Embedded.TokenSecret; s.IsSet() || s.Origin() != "" || s.String() != "" {
		t.Errorf("empty token_secret = set %v origin %q string %q", s.IsSet(), s.Origin(), s)
	}
}

// TestSecretsNeverPrinted formats a whole Config holding secrets in every
// way a program might log or dump it, and looks for the value.
func TestSecretsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "turn"), secretValue)
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(`version: 1
signaling:
  embedded:
    token_secret: `+secretValue+`
  external:
    username: door
    password: {file: turn}
media:
  turn_servers: [{url: "turn:t.example.org", username: u, credential: "credential:turn"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Secret{c.Signaling.Embedded.TokenSecret, c.Signaling.External.Password, c.Media.TURNServers[0].Credential} {
		if s.Reveal() != secretValue {
			t.Fatalf("secret not loaded: origin %q", s.Origin())
		}
	}

	var out bytes.Buffer
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		fmt.Fprintf(&out, format+"\n", c)
		fmt.Fprintf(&out, format+"\n", *c)
		fmt.Fprintf(&out, format+"\n", c.Signaling)
		fmt.Fprintf(&out, format+"\n", c.Signaling.External.Password)
		fmt.Fprintf(&out, format+"\n", c.Media.TURNServers)
	}
	fmt.Fprintln(&out, c.Signaling.Embedded.TokenSecret)

	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c, "password", c.Signaling.External.Password, "signaling", c.Signaling)
		l.Info("secret", slog.Any("token", c.Signaling.Embedded.TokenSecret), slog.Any("turn", c.Media.TURNServers))
	}

	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)

	if strings.Contains(out.String(), secretValue) || strings.Contains(out.String(), fmt.Sprintf("%x", secretValue)) {
		t.Fatalf("secret value printed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), redacted) {
		t.Fatalf("output never says %s; the secrets were not printed at all:\n%s", redacted, out.String())
	}
	// Where a secret came from is safe and useful to log.
	if !strings.Contains(c.Signaling.External.Password.Origin(), "turn") {
		t.Errorf("Origin() = %q", c.Signaling.External.Password.Origin())
	}
}
