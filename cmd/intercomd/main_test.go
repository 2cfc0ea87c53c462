package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func dispatchOut(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = dispatch(context.Background(), args, &cmdEnv{stdin: strings.NewReader(""), stdout: &o, stderr: &e, getenv: func(string) string { return "" }})
	return o.String(), e.String(), err
}

// TestHelpListsCommands: --help, -h and help print every command on its
// own line and the global flags to stdout, and succeed.
func TestHelpListsCommands(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help", "-help"} {
		out, _, err := dispatchOut(t, arg)
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for name, c := range commands() {
			if !strings.Contains(out, "  "+name) || !strings.Contains(out, c.summary) {
				t.Errorf("%s: command %s missing from\n%s", arg, name, out)
			}
		}
		if !strings.Contains(out, "--version") || !strings.Contains(out, "--help") {
			t.Errorf("%s: global flags missing from\n%s", arg, out)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		out, _, err := dispatchOut(t, arg)
		if err != nil || out != "intercomd "+version+"\n" {
			t.Errorf("%s: %q, %v", arg, out, err)
		}
	}
}

// TestCommandHelp: <cmd> --help prints that command's flags and ends in
// flag.ErrHelp, which main turns into exit status 0.
func TestCommandHelp(t *testing.T) {
	_, errOut, err := dispatchOut(t, "check-config", "--help")
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(errOut, "usage: intercomd check-config") || !strings.Contains(errOut, "-config") {
		t.Errorf("check-config --help:\n%s", errOut)
	}
	if _, _, err := dispatchOut(t, "no-such-command"); err == nil {
		t.Error("an unknown command succeeded")
	}
}
