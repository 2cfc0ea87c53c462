package homeassistant

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercomd/intercomd/internal/mqtttest"
)

// TestBridgeOverMosquitto plays Home Assistant on a real Mosquitto: it sees
// discovery and availability, the link, a ring with its snapshot and the
// outcome, presses Open door (a flood opens once per interval), restarts
// (online on the status topic: discovery again), and the feature turned
// off removes every entity.
func TestBridgeOverMosquitto(t *testing.T) {
	url := mqtttest.StartPlainMosquitto(t)
	ha := mqtttest.NewRecorder(t, url, "ha", "#")
	var opened atomic.Int32
	var by atomic.Value
	o := BridgeOptions{Options: testOptions(), Broker: url, ClientID: "intercomd-ha", Enabled: true,
		Principal: "homeassistant", MinOpenInterval: 2 * time.Second,
		OnOpen: func(who string) { opened.Add(1); by.Store(who) }}
	b, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range o.Discovery() {
		ha.Wait(t, m.Topic, func(p []byte, _ int) bool { return string(p) == string(m.Payload) })
	}
	ha.WaitPayload(t, o.AvailabilityTopic(), Online)

	b.Link(true)
	ha.WaitPayload(t, o.LinkTopic(), "ON")
	jpeg := "\xff\xd8\xff\xe0 snapshot \xff\xd9"
	b.CallState("dialing")
	b.Ring()
	b.Snapshot([]byte(jpeg))
	ha.WaitPayload(t, o.EventTopic(), `{"event_type":"ring"}`)
	ha.WaitPayload(t, o.SnapshotTopic(), jpeg)
	ha.WaitPayload(t, o.CallTopic(), "dialing")
	b.Outcome(EventMissed)
	ha.WaitPayload(t, o.EventTopic(), `{"event_type":"missed"}`)

	// A flood of presses opens the door once per interval, as homeassistant.
	for range 50 {
		ha.Publish(o.DoorTopic(), PayloadPress, false)
	}
	ha.Publish(o.DoorTopic(), "garbage", false)
	time.Sleep(300 * time.Millisecond)
	if n := opened.Load(); n != 1 || by.Load() != "homeassistant" {
		t.Fatalf("50 presses opened %d times by %v", n, by.Load())
	}

	// Home Assistant restarting: discovery comes again.
	topic := o.Discovery()[0].Topic
	_, _, before := ha.Last(topic)
	ha.Publish("homeassistant/status", Online, false)
	ha.Wait(t, topic, func(_ []byte, n int) bool { return n > before })

	b.Close()
	ha.WaitPayload(t, o.AvailabilityTopic(), Offline)

	// Feature off: every entity removed.
	o.Enabled = false
	b2, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	for _, m := range o.Removal() {
		ha.WaitPayload(t, m.Topic, "")
	}
	// A fresh subscriber sees no retained config.
	fresh := mqtttest.NewRecorder(t, url, "ha2", "#")
	time.Sleep(300 * time.Millisecond)
	for _, tp := range fresh.Topics() {
		if strings.HasSuffix(tp, "/config") {
			t.Errorf("retained config left on %s", tp)
		}
	}
}

// TestBridgeRefusedDiscovery: a Mosquitto whose ACL drops the discovery
// topics (here the signaling ACL, which knows nothing of Home Assistant)
// gives one clear warning.
func TestBridgeRefusedDiscovery(t *testing.T) {
	env := mqtttest.StartMosquitto(t, map[string]string{"door": "secret"}, nil)
	logs := env.Logs
	o := BridgeOptions{Options: testOptions(), Broker: env.URL(), Username: "door", Password: "secret",
		ClientID: "door-ha", Enabled: true, Logger: env.Logger()}
	b, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const want = "the broker refused Home Assistant discovery topics"
	for end := time.Now().Add(verifyWait + 10*time.Second); time.Now().Before(end) && !strings.Contains(logs.String(), want); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
}
