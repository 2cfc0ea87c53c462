package packaging

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/internal/mqtttest"
)

// target is one cross architecture and how qemu-user runs its binaries.
type target struct {
	arch    string
	machine elf.Machine
	qemu    string // qemu-user-static binary
	sysroot string // the cross libc, for the dynamic loader
	pkg     string // Debian package of the sysroot
}

var targets = []target{
	{"arm64", elf.EM_AARCH64, "qemu-aarch64-static", "/usr/aarch64-linux-gnu", "libc6-arm64-cross"},
	{"armhf", elf.EM_ARM, "qemu-arm-static", "/usr/arm-linux-gnueabihf", "libc6-armhf-cross"},
}

// command returns a command running bin under qemu-user with the cross libc.
func (tg target) command(ctx context.Context, t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	q := requireTool(t, tg.qemu, "qemu-user-static")
	if _, err := os.Stat(tg.sysroot); err != nil {
		missing(t, tg.sysroot+" missing: install the Debian package "+tg.pkg)
	}
	cmd := exec.CommandContext(ctx, q, append([]string{"-L", tg.sysroot, bin}, args...)...)
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// cleanEnv is the test's environment without anything that would make the
// daemon believe it runs under systemd.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY", "LISTEN_FDS", "LISTEN_PID":
		default:
			env = append(env, kv)
		}
	}
	return env
}

// TestCrossBinaries builds each cross target and runs it under qemu-user:
// the ELF machine is right, version prints the stamped version, and
// check-config accepts the example and the packaged configuration and
// rejects a broken one with its line.
func TestCrossBinaries(t *testing.T) {
	dir := t.TempDir()
	root := repoRoot(t)
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "turn-password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("version: 1\ndevice:\n  user: door\n  colour: blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		t.Run(tg.arch, func(t *testing.T) {
			bin := binary(t, tg.arch, dir)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != tg.machine {
				t.Errorf("%s is for %v, want %v", bin, f.Machine, tg.machine)
			}
			if f.Section(".symtab") != nil {
				t.Errorf("%s is not stripped", bin)
			}
			f.Close()
			fi, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d bytes stripped", tg.arch, fi.Size())

			ctx := testContext(t, 2*time.Minute)
			out, err := tg.command(ctx, t, bin, "version").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "intercomd "+testVersion {
				t.Errorf("version: %v: %q, want %q", err, out, "intercomd "+testVersion)
			}

			for _, cfg := range []string{
				filepath.Join(root, "config/intercomd.example.yaml"),
				filepath.Join(root, "packaging/debian/intercomd.yaml"),
			} {
				cmd := tg.command(ctx, t, bin, "check-config", "--config", cfg)
				cmd.Env = append(cmd.Env, "CREDENTIALS_DIRECTORY="+creds)
				out, err := cmd.CombinedOutput()
				if err != nil || !strings.Contains(string(out), ": valid") {
					t.Errorf("check-config %s: %v\n%s", cfg, err, out)
				}
			}
			out, err = tg.command(ctx, t, bin, "check-config", "--config", broken).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "broken.yaml:4") {
				t.Errorf("check-config of a broken file: %v, want an error naming line 4:\n%s", err, out)
			}
		})
	}
}

// TestCallToEmulatedDaemon runs the arm64 daemon under qemu-user with its
// embedded broker on a free port, simulated GPIO and auto-answer, and calls
// it from the host's softphone: the call must connect and end cleanly, and
// the daemon must stop cleanly on SIGTERM.
func TestCallToEmulatedDaemon(t *testing.T) {
	tg := targets[0]
	dir := t.TempDir()
	daemonBin := binary(t, tg.arch, dir)
	phoneBin := binary(t, hostArch(), dir)
	ctx := testContext(t, 5*time.Minute)

	port := freePort(t)
	state := filepath.Join(t.TempDir(), "state")
	cfg := filepath.Join(t.TempDir(), "intercomd.yaml")
	conf := fmt.Sprintf(`version: 1
device:
  user: door
  state_dir: %s
signaling:
  embedded:
    listen: "127.0.0.1:%d"
calling:
  auto_answer: true
  callers: [alice]
http:
  listen: "127.0.0.1:0"
audio:
  backend: "null"
gpio:
  backend: sim
`, state, port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The token is signed by the emulated binary with the secret it creates
	// in the state directory, which the daemon then loads.
	tok, err := tg.command(ctx, t, daemonBin, "usersig", "--config", cfg, "--user", "alice", "--ttl", "1h").Output()
	if err != nil {
		t.Fatalf("usersig: %v", err)
	}
	token := strings.TrimSpace(string(tok))

	d := startDaemon(ctx, t, tg.command(ctx, t, daemonBin, "run", "--config", cfg))
	t.Logf("arm64 daemon under qemu-user: ready %v after exec, signaling up after %v", d.readyAfter, d.linkAfter)

	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	phone := exec.CommandContext(pctx, phoneBin, "phone", "--broker", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"--user", "alice", "--token", token, "--call", "door", "--audio", "--once", "--hangup-after", "2s")
	phone.Env = cleanEnv()
	phone.WaitDelay = 5 * time.Second
	var pout, perr bytes.Buffer
	phone.Stdout, phone.Stderr = &pout, &perr
	err = phone.Run()
	if err != nil {
		t.Errorf("softphone: %v\nstdout:\n%s\nstderr:\n%s", err, pout.String(), perr.String())
	}
	for _, want := range []string{"signed in as alice", "event State dialing -> in_call", "event CallEnd"} {
		if !strings.Contains(pout.String(), want) {
			t.Errorf("softphone output lacks %q:\n%s\ndaemon log:\n%s", want, pout.String(), d.log())
		}
	}
	if !strings.Contains(d.log(), "auto-answering") {
		t.Errorf("daemon did not auto-answer:\n%s", d.log())
	}
	d.stop(t)
}

func freePort(t *testing.T) int { return mqtttest.FreePort(t) }

// daemon is a running intercomd whose log is collected.
type daemon struct {
	cmd        *exec.Cmd
	readyAfter time.Duration // from exec to "intercomd ready" (READY=1)
	linkAfter  time.Duration // from exec to its signaling link being up
	mu         sync.Mutex
	buf        bytes.Buffer
	done       chan error
}

func (d *daemon) log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String()
}

// startDaemon starts cmd and waits for its "intercomd ready" log line and
// then for its signaling link: READY=1 comes once the broker listens, and a
// call placed before the daemon itself has signed in finds it offline.
func startDaemon(ctx context.Context, t *testing.T, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{cmd: cmd, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	ready := make(chan struct{})
	linkUp := make(chan struct{})
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		var readyOnce, linkOnce sync.Once
		for sc.Scan() {
			d.mu.Lock()
			d.buf.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if strings.Contains(sc.Text(), "intercomd ready") {
				readyOnce.Do(func() { close(ready) })
			}
			if strings.Contains(sc.Text(), `msg="signaling link" up=true`) {
				linkOnce.Do(func() { close(linkUp) })
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-lines
		d.done <- err
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	for _, w := range []struct {
		what  string
		ch    <-chan struct{}
		after *time.Duration
	}{{"ready", ready, &d.readyAfter}, {"signaling link up", linkUp, &d.linkAfter}} {
		select {
		case <-w.ch:
			*w.after = time.Since(t0)
		case err := <-d.done:
			d.done <- err
			t.Fatalf("daemon exited before %s: %v\n%s", w.what, err, d.log())
		case <-ctx.Done():
			t.Fatalf("daemon not %s: %v\n%s", w.what, ctx.Err(), d.log())
		}
	}
	return d
}

// stop sends SIGTERM and expects a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon exit after SIGTERM: %v\n%s", err, d.log())
		}
		if !strings.Contains(d.log(), "intercomd stopped") {
			t.Errorf("daemon did not log its stop:\n%s", d.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon still running 30s after SIGTERM:\n%s", d.log())
	}
}
