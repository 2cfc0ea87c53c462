package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns
// names the file, and that what it accepts is valid and survives a second
// validation. The example is seeded one top-level section at a time,
// without its comments: the whole file (about 20 KB) makes every new input
// the fuzzer finds take most of its budget to minimise.
func FuzzParse(f *testing.F) {
	if ex, err := os.ReadFile(exampleFile); err == nil {
		for _, sec := range exampleSections(string(ex)) {
			f.Add([]byte("version: 1\n" + sec))
		}
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

// exampleSections splits a YAML document into its top-level sections
// (a key at column 0 and the lines indented under it), dropping comment
// lines and trailing comments.
func exampleSections(doc string) []string {
	var secs []string
	var cur strings.Builder
	for line := range strings.Lines(doc) {
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimRight(line[:i], " ") + "\n"
		}
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "version:") {
			continue
		}
		if line[0] != ' ' && cur.Len() > 0 {
			secs = append(secs, cur.String())
			cur.Reset()
		}
		cur.WriteString(line)
	}
	if cur.Len() > 0 {
		secs = append(secs, cur.String())
	}
	return secs
}

// TestExampleSectionsParse: every seed of FuzzParse is a configuration
// Parse accepts (but for its credentials, which need systemd), so the
// fuzzer starts from valid sections of every part.
func TestExampleSectionsParse(t *testing.T) {
	ex, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	secs := exampleSections(string(ex))
	if len(secs) < 8 {
		t.Fatalf("%d sections in the example", len(secs))
	}
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	for _, sec := range secs {
		if _, err := Parse("fuzz.yaml", []byte("version: 1\n"+sec)); err != nil && !strings.Contains(err.Error(), "$CREDENTIALS_DIRECTORY is not set") {
			t.Errorf("section %q: %v", sec[:strings.IndexByte(sec, '\n')], err)
		}
	}
}
