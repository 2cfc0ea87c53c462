package homeassistant

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// startMosquitto runs a real Mosquitto with anonymous access on a loopback
// port, the usual broker beside Home Assistant.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			bin = "/usr/sbin/mosquitto"
		} else if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto missing (Debian package mosquitto)")
		} else {
			t.Skip("SKIP: mosquitto missing (Debian package mosquitto)")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "tcp://" + addr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("mosquitto did not listen")
	return ""
}

// fakeHA subscribes as Home Assistant does and records the last message of
// every topic.
type fakeHA struct {
	c    paho.Client
	mu   sync.Mutex
	last map[string][]byte
	n    map[string]int
}

func newHA(t *testing.T, url string) *fakeHA {
	h := &fakeHA{last: map[string][]byte{}, n: map[string]int{}}
	o := paho.NewClientOptions().AddBroker(url).SetClientID("ha").SetOrderMatters(false)
	h.c = paho.NewClient(o)
	if tk := h.c.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatal("ha connect", tk.Error())
	}
	tk := h.c.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		h.mu.Lock()
		h.last[m.Topic()] = append([]byte(nil), m.Payload()...)
		h.n[m.Topic()]++
		h.mu.Unlock()
	})
	tk.WaitTimeout(10 * time.Second)
	t.Cleanup(func() { h.c.Disconnect(100) })
	return h
}

func (h *fakeHA) wait(t *testing.T, topic string, ok func(p []byte, n int) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		p, have := h.last[topic]
		n := h.n[topic]
		h.mu.Unlock()
		if have && ok(p, n) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Fatalf("%s: last %q after %d messages", topic, h.last[topic], h.n[topic])
}

func (h *fakeHA) publish(topic, payload string, retain bool) {
	h.c.Publish(topic, 1, retain, payload).WaitTimeout(5 * time.Second)
}

func TestBridgeOverMosquitto(t *testing.T) {
	url := startMosquitto(t)
	ha := newHA(t, url)
	var opened atomic.Int32
	var by atomic.Value
	o := BridgeOptions{Options: testOptions(), Broker: url, ClientID: "intercomd-ha", Enabled: true,
		Principal: "homeassistant", MinOpenInterval: 500 * time.Millisecond,
		OnOpen: func(who string) { opened.Add(1); by.Store(who) }}
	b, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	any1 := func(p []byte, n int) bool { return len(p) > 0 }
	for _, m := range o.Discovery() {
		ha.wait(t, m.Topic, any1)
	}
	ha.wait(t, o.AvailabilityTopic(), func(p []byte, _ int) bool { return string(p) == Online })

	b.Link(true)
	ha.wait(t, o.LinkTopic(), func(p []byte, _ int) bool { return string(p) == "ON" })
	jpeg := []byte("\xff\xd8\xff\xe0 snapshot \xff\xd9")
	b.CallState("ringing")
	b.Ring(jpeg)
	ha.wait(t, o.SnapshotTopic(), func(p []byte, _ int) bool { return string(p) == string(jpeg) })
	ha.wait(t, o.EventTopic(), func(p []byte, _ int) bool { return string(p) == `{"event_type":"ring"}` })
	ha.wait(t, o.CallTopic(), func(p []byte, _ int) bool { return string(p) == "ringing" })
	b.Outcome(EventMissed)
	ha.wait(t, o.EventTopic(), func(p []byte, _ int) bool { return string(p) == `{"event_type":"missed"}` })

	// A flood of presses opens the door once per interval, as homeassistant.
	for i := 0; i < 50; i++ {
		ha.publish(o.DoorTopic(), PayloadPress, false)
	}
	time.Sleep(300 * time.Millisecond)
	if n := opened.Load(); n != 1 || by.Load() != "homeassistant" {
		t.Fatalf("50 presses opened %d times by %v", n, by.Load())
	}
	ha.publish(o.DoorTopic(), "garbage", false)

	// Home Assistant restarting: discovery comes again.
	topic := o.Discovery()[0].Topic
	ha.mu.Lock()
	before := ha.n[topic]
	ha.mu.Unlock()
	ha.publish("homeassistant/status", Online, false)
	ha.wait(t, topic, func(_ []byte, n int) bool { return n > before })

	b.Close()
	ha.wait(t, o.AvailabilityTopic(), func(p []byte, _ int) bool { return string(p) == Offline })

	// Feature off: every entity removed.
	o.Enabled = false
	b2, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	for _, m := range o.Removal() {
		ha.wait(t, m.Topic, func(p []byte, _ int) bool { return len(p) == 0 })
	}
	// A fresh subscriber sees no retained config.
	fresh := newHA(t, url)
	time.Sleep(300 * time.Millisecond)
	fresh.mu.Lock()
	defer fresh.mu.Unlock()
	for tp := range fresh.last {
		if strings.HasSuffix(tp, "/config") {
			t.Errorf("retained config left on %s", tp)
		}
	}
}
