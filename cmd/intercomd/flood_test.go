package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// rawClient connects a bare MQTT client to the daemon's embedded broker as
// user, with a token of the daemon's secret.
func (d *daemonUnderTest) rawClient(t *testing.T, user string) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(d.mqttURL).SetClientID(user + ".raw").
		SetUsername(user).SetPassword(d.token(t, user)).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", user, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// One signed-in client sending messages of a 60 KB unknown type made
// 60 KB lines as fast as it could send them (17 MB/s). The daemon's log
// now stays small: values cut, the client's warnings rate-limited.
func TestDaemonLogFloodBounded(t *testing.T) {
	d := startDaemon(t, "")
	mallory := d.rawClient(t, "mallory")
	bob := d.rawClient(t, "bob")
	before := len(d.stderr.String())
	const n = 300
	payload := []byte(fmt.Sprintf(`{"v":1,"type":%q,"call":"c1"}`, strings.Repeat("T", 60<<10)))
	for range n {
		publish(t, mallory, "intercomd/v1/inbox/door/mallory", payload)
	}
	// Another client's bad message, sent after, is still reported.
	publish(t, bob, "intercomd/v1/inbox/door/bob", []byte(`{"v":1,"type":"bob-was-here"}`))
	d.stderr.waitFor(t, "bob-was-here", 30*time.Second)
	log := d.stderr.String()[before:]
	if len(log) > 16<<10 {
		t.Errorf("%d messages of 60 KB made %d bytes of log", n, len(log))
	}
	for _, l := range strings.Split(log, "\n") {
		if len(l) > 4<<10 {
			t.Errorf("a %d-byte log line: %.300s", len(l), l)
			break
		}
	}
	if !strings.Contains(log, "from=mallory") {
		t.Errorf("mallory's messages not reported at all:\n%s", log)
	}
	t.Logf("%d messages of 60 KB: %d bytes of log, %d lines naming mallory", n, len(log), strings.Count(log, "from=mallory"))
}
