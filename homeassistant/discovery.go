// Package homeassistant makes the door station visible to Home Assistant
// through MQTT discovery, with no custom integration: one device with a
// doorbell event entity (ring and the call's outcome), a button that opens
// the door, an image entity with the snapshot of the last ring, and the call
// state and signaling link as sensors, all available while the daemon's own
// availability topic says online (a retained will says offline).
//
// Discovery follows Home Assistant's MQTT integration: one retained config
// message per entity on <prefix>/<component>/<node_id>/<object_id>/config,
// republished when Home Assistant announces online on <prefix>/status, and
// removed (empty retained payloads) when the feature is turned off.
package homeassistant

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// Event types of the doorbell event entity. Ring is required by Home
// Assistant for device_class doorbell; the others are the call's outcome.
const (
	EventRing     = "ring"
	EventAnswered = "answered"
	EventMissed   = "missed"
	EventDeclined = "declined"
)

// EventTypes lists every event type the event entity declares.
var EventTypes = []string{EventRing, EventAnswered, EventMissed, EventDeclined}

// Availability payloads.
const (
	Online  = "online"
	Offline = "offline"
)

// PayloadPress is what the open-door button publishes.
const PayloadPress = "OPEN"

// Device describes the door station to Home Assistant.
type Device struct {
	// ID identifies the device; it must not change.
	ID string
	// Name, Model and SWVersion are shown on the device page.
	Name, Model, SWVersion string
	// URL is the configuration_url: the link to the phone app.
	URL string
}

// Options locates the entities on the broker.
type Options struct {
	// Prefix is Home Assistant's discovery prefix ("homeassistant").
	Prefix string
	// NodeID groups the config topics; it matches [A-Za-z0-9_-]+.
	NodeID string
	// Base is the topic under which the device's state and commands live
	// ("intercomd/<node_id>" when empty).
	Base   string
	Device Device
}

var nodeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Check reports the first problem with o.
func (o Options) Check() error {
	if o.Prefix == "" {
		return fmt.Errorf("discovery prefix is empty")
	}
	if !nodeRE.MatchString(o.NodeID) {
		return fmt.Errorf("node_id %q must match %s", o.NodeID, nodeRE)
	}
	if o.Device.ID == "" {
		return fmt.Errorf("device ID is empty")
	}
	return nil
}

func (o Options) base() string {
	if o.Base != "" {
		return o.Base
	}
	return "intercomd/" + o.NodeID
}

// Topics the device publishes and listens to.
func (o Options) AvailabilityTopic() string { return o.base() + "/availability" }
func (o Options) EventTopic() string        { return o.base() + "/event" }
func (o Options) CallTopic() string         { return o.base() + "/call" }
func (o Options) LinkTopic() string         { return o.base() + "/link" }
func (o Options) SnapshotTopic() string     { return o.base() + "/snapshot" }
func (o Options) DoorTopic() string         { return o.base() + "/door/open" }
func (o Options) StatusTopic() string       { return o.Prefix + "/status" }

// Message is one MQTT publication.
type Message struct {
	Topic   string
	Payload []byte
}

// entity is one discovered entity before encoding.
type entity struct {
	component, object string
	fields            map[string]any
}

func (o Options) entities() []entity {
	return []entity{
		{"event", "doorbell", map[string]any{
			"name":         "Doorbell",
			"device_class": "doorbell",
			"state_topic":  o.EventTopic(),
			"event_types":  EventTypes,
		}},
		{"button", "open_door", map[string]any{
			"name":          "Open door",
			"icon":          "mdi:door-open",
			"command_topic": o.DoorTopic(),
			"payload_press": PayloadPress,
			"qos":           1,
			"retain":        false,
		}},
		{"image", "last_ring", map[string]any{
			"name":         "Last ring",
			"image_topic":  o.SnapshotTopic(),
			"content_type": "image/jpeg",
		}},
		{"sensor", "call_state", map[string]any{
			"name":         "Call",
			"icon":         "mdi:phone",
			"state_topic":  o.CallTopic(),
			"device_class": "enum",
			"options":      CallStates,
		}},
		{"binary_sensor", "signaling", map[string]any{
			"name":            "Signaling link",
			"device_class":    "connectivity",
			"entity_category": "diagnostic",
			"state_topic":     o.LinkTopic(),
			"payload_on":      "ON",
			"payload_off":     "OFF",
		}},
	}
}

// Call states the call sensor reports.
var CallStates = []string{"idle", "dialing", "ringing", "in_call"}

// Discovery returns the retained config messages of every entity.
func (o Options) Discovery() []Message {
	dev := map[string]any{
		"identifiers":  []string{o.Device.ID},
		"name":         o.Device.Name,
		"manufacturer": "intercomd",
		"model":        o.Device.Model,
		"sw_version":   o.Device.SWVersion,
	}
	if o.Device.URL != "" {
		dev["configuration_url"] = o.Device.URL
	}
	var out []Message
	for _, e := range o.entities() {
		f := map[string]any{
			"unique_id": o.Device.ID + "_" + e.object,
			// object_id stopped working in Home Assistant 2026.4.
			"default_entity_id": e.component + "." + o.NodeID + "_" + e.object,
			"device":            dev,
			"origin": map[string]any{
				"name":       "intercomd",
				"sw_version": o.Device.SWVersion,
			},
			"availability": []map[string]any{{
				"topic":                 o.AvailabilityTopic(),
				"payload_available":     Online,
				"payload_not_available": Offline,
			}},
		}
		for k, v := range e.fields {
			f[k] = v
		}
		b, err := json.Marshal(f)
		if err != nil {
			panic(err) // only strings, numbers and lists above
		}
		out = append(out, Message{Topic: o.configTopic(e), Payload: b})
	}
	return out
}

// Removal returns the empty retained messages that remove every entity.
func (o Options) Removal() []Message {
	var out []Message
	for _, e := range o.entities() {
		out = append(out, Message{Topic: o.configTopic(e)})
	}
	return out
}

func (o Options) configTopic(e entity) string {
	return o.Prefix + "/" + e.component + "/" + o.NodeID + "/" + e.object + "/config"
}

// EventPayload is the state of the event entity for one event type.
func EventPayload(eventType string) []byte {
	b, _ := json.Marshal(map[string]string{"event_type": eventType})
	return b
}
