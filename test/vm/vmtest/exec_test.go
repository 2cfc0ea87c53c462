//go:build vmexec

package vmtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitingLine is what test/vm/exec prints while another guest runs.
var waitingLine = regexp.MustCompile(`^test/vm/exec: waiting for another guest to finish \(.*\)\n`)

// execScript finds test/vm/exec from this package's directory.
func execScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "exec"))
	if err != nil {
		t.Fatalf("locate test/vm/exec: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("locate test/vm/exec: %v", err)
	}
	return p
}

// runGuest runs argv through test/vm/exec in dir with extra environment and
// returns stdout, stderr and the exit status.
func runGuest(t *testing.T, dir string, env []string, argv ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, execScript(t), argv...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run test/vm/exec: %v\nstderr:\n%s", err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes(), code
}

// guestScript writes, in the guest, a megabyte of random bytes both to stdout
// and to a file in the shared working directory, then fixed bytes (NUL, CR,
// no final newline) to stderr, the environment and arguments it was given,
// and exits with status 7.
const guestScript = `set -e
head -c 1048576 /dev/urandom > random.bin
cat random.bin
printf 'err\0\r\nno newline' >&2
{
	pwd
	printf '%s|' "$@"; echo
	echo "probe=$INTERCOMD_VM_PROBE"
	echo "other=${UNRELATED_VARIABLE-unset}"
	echo "guest=${INTERCOMD_VM_GUEST-unset}"
	uname -r
} > report.txt
exit 7
`

func TestExecPropagatesOutputStatusAndDirectory(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runGuest(t, dir,
		[]string{"INTERCOMD_VM_PROBE=it's passed", "UNRELATED_VARIABLE=not passed"},
		"/bin/bash", "-c", guestScript, "script", "two words", "", "quote'd")

	if code != 7 {
		t.Errorf("exit status = %d, want 7\nstderr:\n%s", code, stderr)
	}
	// test/vm/exec itself may first say that it waits for another guest.
	stderr = waitingLine.ReplaceAll(stderr, nil)
	if want := []byte("err\x00\r\nno newline"); !bytes.Equal(stderr, want) {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	random, err := os.ReadFile(filepath.Join(dir, "random.bin"))
	if err != nil {
		t.Fatalf("file the guest wrote in the shared working directory: %v", err)
	}
	if len(random) != 1<<20 {
		t.Fatalf("random.bin has %d bytes, want %d", len(random), 1<<20)
	}
	if !bytes.Equal(stdout, random) {
		t.Errorf("stdout (%d bytes) differs from the %d bytes the guest wrote", len(stdout), len(random))
	}

	report, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	if err != nil {
		t.Fatalf("read report: %v", err)
	}
	hostDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(report), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("report = %q, want 6 lines", report)
	}
	for i, want := range []string{hostDir, "two words||quote'd|", "probe=it's passed", "other=unset", "guest=1"} {
		if lines[i] != want {
			t.Errorf("report line %d = %q, want %q", i+1, lines[i], want)
		}
	}
	if host, err := exec.Command("uname", "-r").Output(); err == nil && lines[5] == strings.TrimSpace(string(host)) {
		t.Errorf("guest kernel %q is the host's: the program did not run in the guest", lines[5])
	}
}

func TestExecTimeoutKillsGuest(t *testing.T) {
	start := time.Now()
	_, stderr, code := runGuest(t, t.TempDir(), []string{"INTERCOMD_VM_TIMEOUT=3"}, "/bin/sleep", "600")
	if code != 124 {
		t.Errorf("exit status = %d, want 124\nstderr:\n%s", code, stderr)
	}
	if !bytes.Contains(stderr, []byte("timed out after 3s")) {
		t.Errorf("stderr lacks the timeout message:\n%s", stderr)
	}
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("timed-out run took %v", d)
	}
}
