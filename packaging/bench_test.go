package packaging

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchConfig is a daemon configuration with test sources only: the
// embedded broker and HTTP on free loopback ports, the camera's test
// pattern, null audio, simulated GPIO.
func benchConfig(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	conf := fmt.Sprintf(`version: 1
device:
  user: door
  state_dir: %s
signaling:
  embedded:
    listen: "127.0.0.1:0"
http:
  listen: "127.0.0.1:0"
camera:
  devices:
    - device: test-pattern
audio:
  backend: "null"
gpio:
  backend: sim
`, filepath.Join(dir, "state"))
	path := filepath.Join(dir, "intercomd.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// notified starts the daemon with NOTIFY_SOCKET pointing at a fresh socket
// and returns once it has sent READY=1, with the time from exec.
func notified(ctx context.Context, b *testing.B, bin, cfg string, extraEnv ...string) (*exec.Cmd, time.Duration) {
	b.Helper()
	sock := filepath.Join(b.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfg)
	cmd.Env = append(append(cleanEnv(), "NOTIFY_SOCKET="+sock), extraEnv...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.WaitDelay = 5 * time.Second
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.Fatalf("no READY=1: %v\n%s", err, logs.String())
		}
		if bytes.Contains(buf[:n], []byte("READY=1")) {
			return cmd, time.Since(t0)
		}
	}
}

func terminate(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		b.Errorf("daemon exit: %v", err)
	}
}

// BenchmarkStartToReady measures a process start to READY=1 on the host's
// native build, with test sources (target: 300 ms).
func BenchmarkStartToReady(b *testing.B) {
	bin := binary(b, hostArch(), b.TempDir())
	cfg := benchConfig(b)
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd, d := notified(ctx, b, bin, cfg)
		total += d
		terminate(b, cmd)
		cancel()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/ready")
}

// BenchmarkIdle measures the daemon's resident memory and CPU use over 60 s
// of idling after READY=1 (targets: 30 MB, 0.5 % of one core). Run with
// -benchtime 1x.
func BenchmarkIdle(b *testing.B) {
	bin := binary(b, hostArch(), b.TempDir())
	cfg := benchConfig(b)
	const window = 60 * time.Second
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		// A watchdog as under the unit (WatchdogSec=10s): pings every 5 s.
		cmd, _ := notified(ctx, b, bin, cfg, "WATCHDOG_USEC=10000000")
		time.Sleep(5 * time.Second) // settle: the broker and signaling connect
		c0 := cpuTicks(b, cmd.Process.Pid)
		time.Sleep(window)
		c1 := cpuTicks(b, cmd.Process.Pid)
		rss := rssKB(b, cmd.Process.Pid)
		terminate(b, cmd)
		cancel()
		// /proc reports CPU time in USER_HZ, 100 per second on Linux.
		b.ReportMetric(float64(c1-c0)/100/window.Seconds()*100, "%cpu")
		b.ReportMetric(float64(rss)/1024, "MB-rss")
	}
}

func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which may hold spaces: utime and stime
	// are the 14th and 15th fields overall.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func rssKB(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
