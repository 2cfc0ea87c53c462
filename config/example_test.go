package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const exampleFile = "intercomd.example.yaml"

// loadExample parses the example with the credential it names available.
func loadExample(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "turn-password"), "example\n")
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	c, err := Load(exampleFile)
	if err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	return c
}

// schemaPaths lists every key path of type t, writing list elements as [].
func schemaPaths(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		p := joinKey(prefix, name)
		out = append(out, p)
		ft := f.Type
		switch {
		case ft == durationType || ft == secretType:
		case ft.Kind() == reflect.Struct:
			out = append(out, schemaPaths(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, schemaPaths(ft.Elem(), p+"[]")...)
		}
	}
	return out
}

func TestExampleCoversEveryKey(t *testing.T) {
	c := loadExample(t)
	index := regexp.MustCompile(`\[\d+\]`)
	inFile := map[string]bool{}
	for p := range c.src.lines {
		inFile[index.ReplaceAllString(p, "[]")] = true
	}
	paths := schemaPaths(reflect.TypeFor[Config](), "")
	if len(paths) < 90 {
		t.Fatalf("schema walk found only %d keys; the walk is broken", len(paths))
	}
	for _, p := range paths {
		if !inFile[p] {
			t.Errorf("%s: key of Config missing from %s", p, exampleFile)
		}
	}
}

// TestExampleShowsDefaults checks that the example's values are the
// defaults, apart from the list entries it adds to show their keys.
func TestExampleShowsDefaults(t *testing.T) {
	c := loadExample(t)
	d := Default()
	if len(c.Signaling.Directory) == 0 || len(c.Media.TURNServers) == 0 || len(c.Push.Ntfy) == 0 {
		t.Fatalf("example lost its directory, TURN or ntfy entries")
	}
	c.Signaling.Directory, c.Media.TURNServers, c.Push.Ntfy = d.Signaling.Directory, d.Media.TURNServers, d.Push.Ntfy
	if !sameConfig(c, d) {
		t.Errorf("example values differ from Default():\n%+v\n%+v", c, d)
		reload, restart := Diff(d, c)
		t.Errorf("differing keys: %v %v", reload, restart)
	}
}

// TestExampleMarksReloadableKeys keeps the "(reloadable)" notes in the
// example in step with Reloadable.
func TestExampleMarksReloadableKeys(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	c := loadExample(t)
	lineOf := map[int]string{}
	for p, l := range c.src.lines {
		if prev, ok := lineOf[l]; !ok || len(p) > len(prev) {
			lineOf[l] = p // the deepest key on the line
		}
	}
	var marked []string
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "(reloadable)") {
			marked = append(marked, lineOf[i+1])
		}
	}
	for _, p := range marked {
		if !Reloadable(p) && p != "calling.doorbell" {
			t.Errorf("%s is marked (reloadable) in the example but Reloadable says restart", p)
		}
	}
	for _, p := range []string{"log.level", "calling.invite_timeout", "calling.auto_answer", "calling.door_users", "calling.callers"} {
		if !slices.Contains(marked, p) {
			t.Errorf("%s is reloadable but not marked so in the example", p)
		}
	}
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "turn-password"), []byte("x"), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Setenv("CREDENTIALS_DIRECTORY", dir)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(exampleFile, data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExampleOutsideSystemd: the shipped example checks as it is outside
// systemd, its credential listed as unresolved, and fails only when
// credentials must be read.
func TestExampleOutsideSystemd(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	c, err := LoadWith("intercomd.example.yaml", LoadOptions{DeferCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.UnresolvedCredentials(); len(got) != 1 || got[0] != "turn-password" {
		t.Errorf("unresolved credentials %q, want [turn-password]", got)
	}
	if v := c.Media.TURNServers[0].Credential.Reveal(); v != "" {
		t.Errorf("an unresolved credential reveals %q", v)
	}
	if _, err := Load("intercomd.example.yaml"); err == nil || !strings.Contains(err.Error(), "CREDENTIALS_DIRECTORY is not set") {
		t.Errorf("Load without credentials: %v", err)
	}
}
