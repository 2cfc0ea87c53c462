package mqtttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/broker"
)

// StartMosquitto runs /usr/sbin/mosquitto on free loopback ports (MQTT and
// MQTT over WebSocket) with a password file for users (user -> password) and
// an ACL implementing the access rule for groups, with the default prefix. The
// process is killed when the test ends.
func StartMosquitto(t testing.TB, users map[string]string, groups map[string][]string) *Env {
	t.Helper()
	return startMosquitto(t, users, groups, nil)
}

func startMosquitto(t testing.TB, users map[string]string, groups map[string][]string, tl *TLS) *Env {
	t.Helper()
	bin := lookMosquitto(t)
	e := newEnv(t, Mosquitto, "", groups)
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for u, pw := range users {
		out, err := exec.Command(bin.passwd, "-b", passwd, u, pw).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_passwd %s: %v: %s", u, err, out)
		}
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(e.Layout.MosquittoACL(groups)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{
		bin:    bin.broker,
		dir:    dir,
		passwd: passwd,
		acl:    acl,
		users:  users,
		env:    e,
		tls:    tl,
	}
	// Another process may take a port between picking and binding it:
	// pick new ports and try again.
	for attempt := 1; ; attempt++ {
		m.port, m.wsPort = FreePort(t), FreePort(t)
		if tl != nil {
			tl.port, tl.mutualPort, tl.wssPort = FreePort(t), FreePort(t), FreePort(t)
		}
		err := m.launch()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("start mosquitto: %v\nlogs:\n%s", err, e.Logs)
		}
	}
	t.Cleanup(func() { m.stop(t) })
	e.impl = m
	return e
}

type mosquittoBins struct{ broker, passwd string }

// lookMosquitto finds the binaries, or skips (fails under CI=true).
func lookMosquitto(t testing.TB) mosquittoBins {
	t.Helper()
	var b mosquittoBins
	var err error
	if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
		b.broker = "/usr/sbin/mosquitto"
	} else if b.broker, err = exec.LookPath("mosquitto"); err != nil {
		b.broker = ""
	}
	if b.passwd, err = exec.LookPath("mosquitto_passwd"); err != nil {
		b.passwd = ""
	}
	if b.broker != "" && b.passwd != "" {
		return b
	}
	msg := "mosquitto and mosquitto_passwd not found: install the Debian package \"mosquitto\" (apt-get install -y mosquitto)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPING: " + msg)
	return b
}

type mosquitto struct {
	bin, dir, passwd, acl string
	users                 map[string]string
	env                   *Env
	port, wsPort          int
	tls                   *TLS // nil: no TLS listeners

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

func (m *mosquitto) url() string   { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }
func (m *mosquitto) wsURL() string { return "ws://127.0.0.1:" + strconv.Itoa(m.wsPort) + "/mqtt" }

func (m *mosquitto) password(t testing.TB, user string) string {
	t.Helper()
	pw, ok := m.users[user]
	if !ok {
		t.Fatalf("mosquitto env has no user %q", user)
	}
	return pw
}

func (m *mosquitto) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "per_listener_settings false\n")
	fmt.Fprintf(&b, "allow_anonymous false\n")
	fmt.Fprintf(&b, "password_file %s\n", m.passwd)
	fmt.Fprintf(&b, "acl_file %s\n", m.acl)
	fmt.Fprintf(&b, "persistence false\n")
	// The bounds docs/protocol.md recommends.
	fmt.Fprintf(&b, "max_packet_size %d\n", broker.DefaultMaxPacketSize)
	fmt.Fprintf(&b, "max_queued_messages %d\nmax_queued_bytes %d\n", broker.MaxInflight, broker.MaxQueuedBytes)
	fmt.Fprintf(&b, "log_dest stderr\n")
	fmt.Fprintf(&b, "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	fmt.Fprintf(&b, "connection_messages true\n")
	if os.Geteuid() == 0 {
		// Stay root instead of switching to the "mosquitto" user, which could
		// not read the test's private directory.
		fmt.Fprintf(&b, "user root\n")
	}
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", m.port)
	fmt.Fprintf(&b, "listener %d 127.0.0.1\nprotocol websockets\n", m.wsPort)
	// Without this a websockets listener binds every address.
	fmt.Fprintf(&b, "socket_domain ipv4\n")
	if tl := m.tls; tl != nil {
		keys := fmt.Sprintf("certfile %s\nkeyfile %s\n", tl.serverCert, tl.serverKey)
		fmt.Fprintf(&b, "listener %d 127.0.0.1\n%s", tl.port, keys)
		fmt.Fprintf(&b, "listener %d 127.0.0.1\n%scafile %s\nrequire_certificate true\n", tl.mutualPort, keys, tl.CAFile)
		fmt.Fprintf(&b, "listener %d 127.0.0.1\nprotocol websockets\n%ssocket_domain ipv4\n", tl.wssPort, keys)
	}
	return b.String()
}

// launch starts the process and waits until both ports accept connections.
func (m *mosquitto) launch() error {
	conf := filepath.Join(m.dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(m.config()), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(m.bin, "-c", conf)
	cmd.Stdout = m.env.Logs
	cmd.Stderr = m.env.Logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ports := []int{m.port, m.wsPort}
	if m.tls != nil {
		ports = append(ports, m.tls.port, m.tls.mutualPort, m.tls.wssPort)
	}
	for _, port := range ports {
		if err := waitListening(ctx, port, exited); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			return err
		}
	}
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return nil
}

func waitListening(ctx context.Context, port int, exited <-chan struct{}) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-exited:
			return errors.New("mosquitto exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("mosquitto not listening on %s: %w", addr, ctx.Err())
		case <-tick.C:
		}
	}
}

func (m *mosquitto) start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	running := m.cmd != nil
	m.mu.Unlock()
	if running {
		t.Fatal("mosquitto already running")
	}
	// The ports were just released by the old process; mosquitto binds with
	// SO_REUSEADDR, but give a slow exit a few tries.
	var err error
	for range 3 {
		if err = m.launch(); err == nil {
			return
		}
	}
	t.Fatalf("restart mosquitto: %v\nlogs:\n%s", err, m.env.Logs)
}

// stop kills the process (SIGKILL: clients see their connections reset).
func (m *mosquitto) stop(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd, m.exited = nil, nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(Timeout):
		t.Errorf("mosquitto pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}
