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

// TestCheckConfigExample: the shipped example passes check-config outside
// systemd with a warning for its credential, and fails with
// --resolve-credentials.
func TestCheckConfigExample(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	const example = "../../config/intercomd.example.yaml"
	out, errOut, err := dispatchOut(t, "check-config", example)
	if err != nil {
		t.Fatalf("check-config of the example: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "valid") || !strings.Contains(errOut, `warning: credential "turn-password" not read`) {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
	if _, _, err := dispatchOut(t, "check-config", "--resolve-credentials", example); err == nil || !strings.Contains(err.Error(), "CREDENTIALS_DIRECTORY is not set") {
		t.Errorf("--resolve-credentials outside systemd: %v", err)
	}
}
