package web_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestBundleUpToDate rebuilds the app from web/src, web/wasm and the locked
// npm packages and checks that the committed (and embedded) web/dist is
// byte for byte what the sources make. After changing any of them, run
// `go generate ./web` and commit web/dist.
func TestBundleUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds the bundle; not with -short")
	}
	if _, err := os.Stat("node_modules/.bin/esbuild"); err != nil {
		_, nerr := exec.LookPath("npm")
		needTool(t, "npm, to install esbuild and mqtt (`npm ci` in web/)", nerr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
		needTool(t, "npm ci in web/: "+string(out), err)
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "go", "run", "./internal/webgen", "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("webgen: %v\n%s", err, b)
	}
	built := listDir(t, out)
	committed := listDir(t, "dist")
	if !slices.Equal(built, committed) {
		t.Fatalf("web/dist has files %v, the sources make %v: run `go generate ./web`", committed, built)
	}
	for _, name := range built {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("dist", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("web/dist/%s is stale (%d bytes, the sources make %d): run `go generate ./web` and commit web/dist", name, len(got), len(want))
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}
