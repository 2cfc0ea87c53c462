package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/homeassistant"
	"github.com/intercomd/intercomd/internal/mqtttest"
)

// TestDaemonHomeAssistant: Home Assistant on a real Mosquitto sees the
// door station discovered and online, a ring and its answer, its Open door
// button pulses the (simulated) relay, logged as homeassistant.
func TestDaemonHomeAssistant(t *testing.T) {
	url := mqtttest.StartPlainMosquitto(t)
	ha := mqtttest.NewRecorder(t, url, "ha", "#")
	d := startDaemon(t, fmt.Sprintf("homeassistant:\n  enabled: true\n  broker: %s\n  app_url: https://door.local:8443/\n", url))
	o := homeassistant.Options{Prefix: "homeassistant", NodeID: "door"}
	ha.Wait(t, "homeassistant/event/door/doorbell/config", func(p []byte, _ int) bool {
		var f map[string]any
		return json.Unmarshal(p, &f) == nil && f["device_class"] == "doorbell"
	})
	ha.WaitPayload(t, o.AvailabilityTopic(), homeassistant.Online)
	ha.WaitPayload(t, o.LinkTopic(), "ON")
	ha.WaitPayload(t, o.CallTopic(), "idle")

	alice, _ := d.phone(t, "alice")
	d.ringDoorbell(t, func() bool { return alice.State() == calling.Ringing })
	ha.WaitPayload(t, o.EventTopic(), `{"event_type":"ring"}`)
	ha.WaitPayload(t, o.CallTopic(), "dialing")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := alice.Do(ctx, calling.Accept{}); err != nil {
		t.Fatal(err)
	}
	ha.WaitPayload(t, o.EventTopic(), `{"event_type":"answered"}`)
	ha.WaitPayload(t, o.CallTopic(), "in_call")

	ha.Publish(o.DoorTopic(), homeassistant.PayloadPress, false)
	d.stdout.waitFor(t, "[relay: ON]", 5*time.Second)
	d.stdout.waitFor(t, "[relay: off]", 5*time.Second)
	d.stderr.waitFor(t, "by=homeassistant", time.Second)
	if strings.Count(d.stdout.String(), "[relay: ON]") != 1 {
		t.Errorf("relay energised other than once:\n%s", d.stdout.String())
	}
	d.cancel()
	ha.WaitPayload(t, o.AvailabilityTopic(), homeassistant.Offline)
}
