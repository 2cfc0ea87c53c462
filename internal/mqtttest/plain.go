package mqtttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// StartPlainMosquitto runs a real Mosquitto on a loopback port with
// anonymous access and no ACL, as the broker beside a home automation
// system usually is, and returns its tcp:// URL. It is killed when the test
// ends.
func StartPlainMosquitto(t testing.TB) string {
	t.Helper()
	bin := lookMosquitto(t)
	port := FreePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin.broker, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := waitListening(ctx, port, exited); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", port)
}

// Recorder is an MQTT client subscribed to every topic (as Home Assistant
// is to its discovery prefix) that keeps the last payload and the count of
// messages of each topic.
type Recorder struct {
	c    paho.Client
	mu   sync.Mutex
	last map[string][]byte
	n    map[string]int
}

// NewRecorder connects a Recorder to url anonymously, subscribed to filter.
func NewRecorder(t testing.TB, url, clientID, filter string) *Recorder {
	t.Helper()
	r := &Recorder{last: map[string][]byte{}, n: map[string]int{}}
	r.c = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetOrderMatters(false))
	if tk := r.c.Connect(); !tk.WaitTimeout(Timeout) || tk.Error() != nil {
		t.Fatalf("recorder connect: %v", tk.Error())
	}
	tk := r.c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		r.mu.Lock()
		r.last[m.Topic()] = append([]byte(nil), m.Payload()...)
		r.n[m.Topic()]++
		r.mu.Unlock()
	})
	if !tk.WaitTimeout(Timeout) || tk.Error() != nil {
		t.Fatalf("recorder subscribe: %v", tk.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(100) })
	return r
}

// Last returns the last payload of topic, whether one arrived, and the
// number of messages seen on it.
func (r *Recorder) Last(topic string) ([]byte, bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.last[topic]
	return p, ok, r.n[topic]
}

// Topics returns every topic seen.
func (r *Recorder) Topics() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for tp := range r.last {
		out = append(out, tp)
	}
	return out
}

// Wait waits until ok accepts the last payload of topic and its count.
func (r *Recorder) Wait(t testing.TB, topic string, ok func(payload []byte, n int) bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if p, have, n := r.Last(topic); have && ok(p, n) {
			return
		}
	}
	p, _, n := r.Last(topic)
	t.Fatalf("%s: last %q after %d messages", topic, p, n)
}

// WaitPayload waits until the last payload of topic is want.
func (r *Recorder) WaitPayload(t testing.TB, topic, want string) {
	t.Helper()
	r.Wait(t, topic, func(p []byte, _ int) bool { return string(p) == want })
}

// Publish publishes payload on topic at QoS 1.
func (r *Recorder) Publish(topic, payload string, retain bool) {
	r.c.Publish(topic, 1, retain, payload).WaitTimeout(5 * time.Second)
}
