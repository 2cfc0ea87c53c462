package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns
// names the file, and that what it accepts is valid and survives a second
// validation.
func FuzzParse(f *testing.F) {
	if ex, err := os.ReadFile(exampleFile); err == nil {
		f.Add(ex)
	}
	for _, s := range []string{
		"", "version: 1\n", "version: 2\n", "version: 1\nlog: {level: debug}\n",
		"version: 1\ngpio:\n  buttons:\n    - {name: call, chip: gpiochip0, offset: 4, long_press: 1s}\n",
		"version: 1\nsignaling: {groups: {a: &x [b, c]}}\ncalling: {door_users: *x}\n",
		"version: 1\nsignaling: {external: {password: {file: /nonexistent}}}\n",
		"version: 1\nmedia: {turn_servers: [{url: 'turn:h:1', username: u, credential: p}]}\n",
		"version: 1\n---\n", "[", "version: 1\ncamera: {devices: [{fps: fast}]}\n",
	} {
		f.Add([]byte(s))
	}
	const name = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		// Secrets must not read real credentials during fuzzing.
		t.Setenv("CREDENTIALS_DIRECTORY", "")
		c, err := Parse(name, data)
		if err != nil {
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("error %q is not an *Error", err)
			}
			for _, e := range errs {
				if e.File != name || !strings.HasPrefix(e.Error(), name) {
					t.Fatalf("error %q does not name the file", e)
				}
				if e.Msg == "" {
					t.Fatalf("error %q has no message", e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		if reload, restart := Diff(c, c); reload != nil || restart != nil {
			t.Fatalf("Diff(c, c) = %v %v", reload, restart)
		}
	})
}
