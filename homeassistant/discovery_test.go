package homeassistant

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// The schema below is written from Home Assistant's MQTT integration
// (homeassistant/components/mqtt: event.py, button.py, image.py, sensor.py,
// binary_sensor.py, the shared entity and device schemas in schemas.py and
// abbreviations.py) and its documentation pages for each component: the
// required keys, the exclusive keys, the allowed device classes, and the
// keys every entity may carry. A key outside the known set is an error:
// Home Assistant's discovery schemas drop unknown keys (vol.REMOVE_EXTRA),
// so a misspelt key would silently do nothing there.
var common = []string{"name", "unique_id", "default_entity_id", "device", "origin", "availability",
	"availability_mode", "icon", "entity_category", "qos", "enabled_by_default", "json_attributes_topic"}

type component struct {
	required, optional []string
	exclusive          [][]string // exactly one of each set
	deviceClasses      []string   // allowed values of device_class
}

var components = map[string]component{
	"event": {required: []string{"state_topic", "event_types"}, optional: []string{"device_class", "value_template"},
		deviceClasses: []string{"button", "doorbell", "motion"}},
	"button": {required: []string{"command_topic"}, optional: []string{"payload_press", "retain", "device_class"},
		deviceClasses: []string{"identify", "restart", "update"}},
	"image": {optional: []string{"content_type", "image_encoding", "url_template", "image_topic", "url_topic"},
		exclusive: [][]string{{"image_topic", "url_topic"}}},
	"sensor": {required: []string{"state_topic"}, optional: []string{"device_class", "options", "unit_of_measurement", "state_class", "value_template"},
		deviceClasses: []string{"enum", "timestamp", "duration", "signal_strength"}},
	"binary_sensor": {required: []string{"state_topic"}, optional: []string{"device_class", "payload_on", "payload_off", "value_template"},
		deviceClasses: []string{"connectivity", "door", "lock", "occupancy", "problem", "sound", "running"}},
}

func testOptions() Options {
	return Options{Prefix: "homeassistant", NodeID: "frontdoor",
		Device: Device{ID: "intercomd-frontdoor", Name: "Front door", Model: "intercomd door station",
			SWVersion: "1.2.3", URL: "https://door.local:8443/"}}
}

func TestDiscoveryFollowsHomeAssistantSchema(t *testing.T) {
	o := testOptions()
	msgs := o.Discovery()
	seen := map[string]bool{}
	uids := map[string]bool{}
	for _, m := range msgs {
		parts := strings.Split(m.Topic, "/")
		if len(parts) != 5 || parts[0] != "homeassistant" || parts[2] != "frontdoor" || parts[4] != "config" {
			t.Fatalf("topic %s is not <prefix>/<component>/<node_id>/<object_id>/config", m.Topic)
		}
		comp, ok := components[parts[1]]
		if !ok {
			t.Fatalf("%s: component %s not checked", m.Topic, parts[1])
		}
		seen[parts[1]] = true
		var f map[string]any
		if err := json.Unmarshal(m.Payload, &f); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		for _, k := range comp.required {
			if _, ok := f[k]; !ok {
				t.Errorf("%s: required key %s missing", m.Topic, k)
			}
		}
		for _, set := range comp.exclusive {
			n := 0
			for _, k := range set {
				if _, ok := f[k]; ok {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s: exactly one of %v required, got %d", m.Topic, set, n)
			}
		}
		for k := range f {
			if !slices.Contains(common, k) && !slices.Contains(comp.required, k) && !slices.Contains(comp.optional, k) {
				t.Errorf("%s: key %s is not in Home Assistant's schema for %s", m.Topic, k, parts[1])
			}
		}
		if dc, ok := f["device_class"].(string); ok && !slices.Contains(comp.deviceClasses, dc) {
			t.Errorf("%s: device_class %s not allowed", m.Topic, dc)
		}
		if _, ok := f["object_id"]; ok {
			t.Errorf("%s: object_id stopped working in Home Assistant 2026.4 (default_entity_id replaces it)", m.Topic)
		}
		if id, _ := f["default_entity_id"].(string); !strings.HasPrefix(id, parts[1]+".") {
			t.Errorf("%s: default_entity_id %q must start with %s.", m.Topic, id, parts[1])
		}
		uid, _ := f["unique_id"].(string)
		if uid == "" || uids[uid] {
			t.Errorf("%s: unique_id %q empty or repeated", m.Topic, uid)
		}
		uids[uid] = true
		dev, _ := f["device"].(map[string]any)
		if ids, _ := dev["identifiers"].([]any); len(ids) != 1 || ids[0] != o.Device.ID {
			t.Errorf("%s: device identifiers %v", m.Topic, dev["identifiers"])
		}
		for _, k := range []string{"name", "model", "sw_version", "configuration_url"} {
			if dev[k] == "" || dev[k] == nil {
				t.Errorf("%s: device.%s missing", m.Topic, k)
			}
		}
		if org, _ := f["origin"].(map[string]any); org["name"] == nil {
			t.Errorf("%s: origin.name missing (Home Assistant logs a warning)", m.Topic)
		}
		av, _ := f["availability"].([]any)
		if len(av) != 1 || av[0].(map[string]any)["topic"] != o.AvailabilityTopic() {
			t.Errorf("%s: availability %v", m.Topic, f["availability"])
		}
		switch parts[1] {
		case "event":
			types, _ := f["event_types"].([]any)
			if f["device_class"] == "doorbell" && !slices.Contains(types, any("ring")) {
				t.Errorf("doorbell event without ring: %v", types)
			}
			for _, w := range []string{"answered", "missed", "declined"} {
				if !slices.Contains(types, any(w)) {
					t.Errorf("event types miss %s", w)
				}
			}
		case "sensor":
			if f["device_class"] == "enum" {
				if opts, _ := f["options"].([]any); len(opts) == 0 {
					t.Errorf("enum sensor without options")
				}
			}
		}
	}
	for c := range components {
		if !seen[c] {
			t.Errorf("no %s entity", c)
		}
	}
}

func TestRemovalIsEmptyRetainedPerEntity(t *testing.T) {
	o := testOptions()
	d, r := o.Discovery(), o.Removal()
	if len(d) != len(r) {
		t.Fatalf("%d discovered, %d removed", len(d), len(r))
	}
	for i := range d {
		if d[i].Topic != r[i].Topic || len(r[i].Payload) != 0 {
			t.Errorf("removal %d: %s %q", i, r[i].Topic, r[i].Payload)
		}
	}
}

func TestOptionsCheck(t *testing.T) {
	o := testOptions()
	o.NodeID = "front door"
	if err := o.Check(); err == nil || !strings.Contains(err.Error(), "node_id") {
		t.Fatalf("bad node_id: %v", err)
	}
}

func TestEventPayload(t *testing.T) {
	if got := string(EventPayload(EventRing)); got != `{"event_type":"ring"}` {
		t.Fatal(got)
	}
}
