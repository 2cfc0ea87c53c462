package broker_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/intercomd/intercomd/broker"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/mqttsig/topic"
	"github.com/intercomd/intercomd/usersig"
)

// MaxBrokerRSS is what the broker process may reach under any one user's
// traffic.
const MaxBrokerRSS = 64 << 20

const childEnv = "INTERCOMD_BROKER_CHILD_SECRET"

// TestBrokerChildProcess is the broker process of TestMemoryBounded: it
// runs only when started by it.
func TestBrokerChildProcess(t *testing.T) {
	secretHex := os.Getenv(childEnv)
	if secretHex == "" {
		t.Skip("the broker process of TestMemoryBounded, started by it")
	}
	secret, err := hex.DecodeString(secretHex)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("addr %s\n", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	_ = b.Close()
}

// peakRSS returns the peak resident set size of process pid (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// The broker runs in a child process, whose peak RSS is read from /proc
// after one user, with one token, does its worst: subscribers that never
// acknowledge (some not even reading) while other connections flood its own
// inbox with QoS 1 messages of the largest size; then hundreds of
// connections holding QoS 1 presence without acknowledging while large
// retained presence keeps coming.
func TestMemoryBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc (Linux) to read the broker's RSS")
	}
	secret, err := usersig.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokerChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+hex.EncodeToString(secret))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("broker process: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "addr ")
	if !ok {
		t.Fatalf("broker process said %q", line)
	}
	pid := cmd.Process.Pid
	tok, err := usersig.Sign(secret, "alice", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	layout, _ := topic.New("")
	inbox := layout.Inbox("alice", "alice")
	presence := layout.Presence("alice")
	big := bytes.Repeat([]byte("x"), calling.MaxMessageSize)
	t.Logf("broker process RSS at start: %.1f MB", float64(peakRSS(t, pid))/(1<<20))

	// connect returns an admitted connection of alice, or nil if refused.
	var n atomic.Int32
	connect := func() *rawConn {
		r := dialRaw(t, addr, 4)
		ack := r.connect(r.connectPacket("alice", tok, fmt.Sprintf("alice.c%d", n.Add(1)), true))
		if ack.ReasonCode != 0 {
			_ = r.c.Close()
			return nil
		}
		return r
	}
	// discard reads and drops everything r receives, acknowledging nothing,
	// and counts the PUBACKs.
	discard := func(r *rawConn, pubacks *atomic.Int32) {
		go func() {
			for {
				pk, err := r.read()
				if err != nil {
					return
				}
				if pk.FixedHeader.Type == packets.Puback && pubacks != nil {
					pubacks.Add(1)
				}
			}
		}()
	}
	// flood sends count QoS 1 messages from r and waits for their PUBACKs.
	flood := func(r *rawConn, topicName string, retain bool, count int) {
		var acks atomic.Int32
		discard(r, &acks)
		for i := range count {
			pk := publishPacket(uint16(i%65535+1), topicName, big)
			pk.FixedHeader.Retain = retain
			if err := r.trySend(pk); err != nil {
				t.Errorf("flood: sent %d of %d: %v", i, count, err)
				return
			}
		}
		deadline := time.Now().Add(mqtttest.Timeout)
		for int(acks.Load()) < count {
			if time.Now().After(deadline) {
				t.Errorf("flood: %d of %d acknowledged", acks.Load(), count)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	closeAll := func(rs []*rawConn) {
		for _, r := range rs {
			if r != nil {
				_ = r.c.Close()
			}
		}
	}

	// 1. Subscribers that never acknowledge; floods into the inbox.
	var subs, pubs []*rawConn
	for i := range 4 {
		r := connect()
		if r == nil {
			t.Fatal("subscriber refused")
		}
		r.subscribe(1, inbox)
		if i%2 == 0 {
			discard(r, nil) // reads but never acknowledges
		} // else: does not even read
		subs = append(subs, r)
	}
	for range 4 {
		if r := connect(); r != nil {
			pubs = append(pubs, r)
		}
	}
	if len(pubs) == 0 {
		t.Fatal("no publisher admitted")
	}
	var wg sync.WaitGroup
	for _, r := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			flood(r, inbox, false, 1000)
		}()
	}
	wg.Wait()
	flooded := peakRSS(t, pid)
	t.Logf("broker process peak RSS after %d publishers × 1000 messages of %d bytes to %d subscribers that never acknowledge: %.1f MB",
		len(pubs), len(big), len(subs), float64(flooded)/(1<<20))
	closeAll(subs)
	closeAll(pubs)

	// 2. Hundreds of connections holding QoS 1 presence unacknowledged,
	// and one that publishes it.
	publisher := connect()
	if publisher == nil {
		t.Fatal("presence publisher refused")
	}
	var holders []*rawConn
	for range 500 {
		r := connect()
		if r == nil {
			continue
		}
		r.subscribe(1, layout.Presence("+"))
		holders = append(holders, r)
	}
	if len(holders) == 0 {
		t.Fatal("no presence holder admitted")
	}
	flood(publisher, presence, true, 300)
	held := peakRSS(t, pid)
	t.Logf("broker process peak RSS after %d connections (of 500 tried) held 300 retained presence messages of %d bytes unacknowledged: %.1f MB",
		len(holders), len(big), float64(held)/(1<<20))
	closeAll(append(holders, publisher))

	if held > MaxBrokerRSS {
		t.Fatalf("broker process peak RSS %.1f MB, limit %d MB", float64(held)/(1<<20), MaxBrokerRSS>>20)
	}
}
