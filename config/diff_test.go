package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name            string
		change          func(c *Config)
		reload, restart []string
	}{
		{"nothing", func(*Config) {}, nil, nil},
		{"log level", func(c *Config) { c.Log.Level = LogDebug }, []string{"log.level"}, nil},
		{"log format", func(c *Config) { c.Log.Format = LogFormatJSON }, nil, []string{"log.format"}},
		{"invite timeout", func(c *Config) { c.Calling.InviteTimeout = time.Minute }, []string{"calling.invite_timeout"}, nil},
		{"ring targets", func(c *Config) {
			c.Calling.Doorbell = Doorbell{Users: []string{"alice"}}
		}, []string{"calling.doorbell.group", "calling.doorbell.users"}, nil},
		{"door users and auto answer", func(c *Config) {
			c.Calling.DoorUsers = []string{"alice"}
			c.Calling.AutoAnswer = true
		}, []string{"calling.auto_answer", "calling.door_users"}, nil},
		{"relay and bell timings", func(c *Config) {
			c.GPIO.Relay.Pulse = 5 * time.Second
			c.GPIO.Relay.Max = 10 * time.Second
			c.GPIO.Bell.Pulse = 2 * time.Second
		}, nil, []string{"gpio.bell.pulse", "gpio.relay.max", "gpio.relay.pulse"}},
		{"button long press", func(c *Config) { c.GPIO.Buttons[0].LongPress = 3 * time.Second }, nil, []string{"gpio.buttons[0].long_press"}},
		{"button line", func(c *Config) { c.GPIO.Buttons[0].Line = "GPIO5" }, nil, []string{"gpio.buttons[0].line"}},
		{"button debounce", func(c *Config) { c.GPIO.Buttons[0].Debounce = 0 }, nil, []string{"gpio.buttons[0].debounce"}},
		{"relay line", func(c *Config) { c.GPIO.Relay.ActiveLow = true }, nil, []string{"gpio.relay.active_low"}},
		{"button added", func(c *Config) {
			c.GPIO.Buttons = append(c.GPIO.Buttons, Button{Name: "b"})
		}, nil, []string{"gpio.buttons"}},
		{"broker", func(c *Config) {
			c.Signaling.Broker = BrokerExternal
			c.Signaling.External.URL = "tcp://b:1883"
			c.Signaling.External.Password = NewSecret("pw")
		}, nil, []string{"signaling.broker", "signaling.external.password", "signaling.external.url"}},
		{"listen addresses", func(c *Config) {
			c.HTTP.Listen = ":443"
			c.Signaling.Embedded.Listen = ""
		}, nil, []string{"http.listen", "signaling.embedded.listen"}},
		{"devices", func(c *Config) {
			c.Camera.Devices[0].Device = "/dev/video1"
			c.Audio.Capture = "USB"
			c.GPIO.Backend = GPIOSim
		}, nil, []string{"audio.capture", "camera.devices[0].device", "gpio.backend"}},
		{"groups", func(c *Config) { c.Signaling.Groups["residents"] = []string{"bob"} }, nil, []string{"signaling.groups"}},
		{"mixed", func(c *Config) {
			c.Log.Level = LogWarn
			c.Media.UDPPort = 5000
		}, []string{"log.level"}, []string{"media.udp_port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := Default(), Default()
			tt.change(new)
			reload, restart := Diff(old, new)
			if !reflect.DeepEqual(reload, tt.reload) || !reflect.DeepEqual(restart, tt.restart) {
				t.Errorf("Diff = reload %q restart %q\nwant reload %q restart %q", reload, restart, tt.reload, tt.restart)
			}
			// Diff is symmetric in what it reports.
			r2, s2 := Diff(new, old)
			if !reflect.DeepEqual(r2, reload) || !reflect.DeepEqual(s2, restart) {
				t.Errorf("Diff(new, old) = %q %q, want the same keys", r2, s2)
			}
		})
	}
}

func TestDiffParsedAgainstDefault(t *testing.T) {
	// A file equal to the defaults but spelt differently is no change.
	c, err := Parse("f.yaml", []byte("version: 1\ncalling: {invite_timeout: 30000ms, door_users: []}\nmedia: {stun_servers: }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if reload, restart := Diff(Default(), c); reload != nil || restart != nil {
		t.Errorf("Diff(Default, same as default) = %q %q", reload, restart)
	}
	if reload, restart := Diff(nil, c); reload != nil || restart != nil {
		t.Errorf("Diff(nil, default) = %q %q", reload, restart)
	}
}

func TestReloadable(t *testing.T) {
	for p, want := range map[string]bool{
		"log.level":                   true,
		"calling.door_users":          true,
		"calling.callers":             true,
		"gpio.buttons[12].long_press": false,
		"gpio.buttons[0].line":        false,
		"gpio.buttons":                false,
		"signaling.groups":            false,
		"device.user":                 false,
		"":                            false,
	} {
		if got := Reloadable(p); got != want {
			t.Errorf("Reloadable(%q) = %v, want %v", p, got, want)
		}
	}
}
