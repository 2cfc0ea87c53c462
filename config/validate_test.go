package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		yaml string // after "version: 1\n", so the first line here is line 2
		want string // the whole error text
	}{
		// device
		{"user id pattern", "device:\n  user: front door\n",
			`f.yaml:3: device.user: "front door" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"user id too long", "device: {user: " + strings.Repeat("a", 65) + "}\n",
			`f.yaml:2: device.user: "` + strings.Repeat("a", 65) + `" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"device name empty", "device:\n  name: \"\"\n", `f.yaml:3: device.name: must be 1 to 128 bytes`},
		{"state dir relative", "device:\n  state_dir: var/lib\n", `f.yaml:3: device.state_dir: must be an absolute path, got "var/lib"`},

		// log
		{"log level enum", "log:\n  level: verbose\n", `f.yaml:3: log.level: must be one of "debug", "info", "warn", "error", got "verbose"`},
		{"log format enum", "log:\n  format: xml\n", `f.yaml:3: log.format: must be one of "auto", "text", "json", got "xml"`},

		// signaling
		{"topic prefix wildcard", "signaling:\n  topic_prefix: a/#\n", `f.yaml:3: signaling.topic_prefix: must be a non-empty MQTT topic without wildcards, leading $ or leading/trailing /`},
		{"broker enum", "signaling:\n  broker: cloud\n", `f.yaml:3: signaling.broker: must be one of "embedded", "external", got "cloud"`},
		{"external url required", "signaling:\n  broker: external\n", `f.yaml:2: signaling.external.url: required when signaling.broker is external`},
		{"external url scheme", "signaling:\n  broker: external\n  external:\n    url: http://broker:1883\n    web_url: wss://broker/mqtt\n",
			`f.yaml:5: signaling.external.url: must be a tcp://, ssl://, ws:// or wss:// URL with a host, got "http://broker:1883"`},
		{"external url no host", "signaling:\n  broker: external\n  external:\n    url: tcp://\n    web_url: wss://broker/mqtt\n",
			`f.yaml:5: signaling.external.url: must be a tcp://, ssl://, ws:// or wss:// URL with a host, got "tcp://"`},
		{"external web url needed for tcp", "signaling:\n  broker: external\n  external:\n    url: tcp://broker:1883\n",
			`f.yaml:4: signaling.external.web_url: required when signaling.external.url is not ws:// or wss:// (phones speak MQTT over WebSocket only)`},
		{"external web url scheme", "signaling:\n  external:\n    web_url: https://broker/mqtt\n",
			`f.yaml:4: signaling.external.web_url: must be a ws:// or wss:// URL with a host, got "https://broker/mqtt"`},
		{"external client cert pair", "signaling:\n  external:\n    cert_file: /etc/c.pem\n",
			`f.yaml:3: signaling.external: give both cert_file and key_file, or neither`},
		{"password without username", "signaling:\n  external:\n    password: x\n",
			`f.yaml:4: signaling.external.password: given without signaling.external.username`},
		{"embedded listen parse", "signaling:\n  embedded:\n    listen: \"1883\"\n", `f.yaml:4: signaling.embedded.listen: must be host:port or :port, got "1883"`},
		{"embedded listen port", "signaling:\n  embedded:\n    listen: \":http\"\n", `f.yaml:4: signaling.embedded.listen: port must be a number from 0 to 65535, got "http"`},
		{"embedded listen port range", "signaling:\n  embedded:\n    listen: \":70000\"\n", `f.yaml:4: signaling.embedded.listen: port must be a number from 0 to 65535, got "70000"`},
		{"embedded connections per user", "signaling:\n  embedded:\n    max_connections_per_user: 0\n", `f.yaml:4: signaling.embedded.max_connections_per_user: must be between 1 and 1024, got 0`},
		{"embedded listen host", "signaling:\n  embedded:\n    listen: \"bad_host:1883\"\n", `f.yaml:4: signaling.embedded.listen: host must be an IP address or a host name, got "bad_host"`},
		{"group member id", "signaling:\n  groups:\n    residents:\n      - alice\n      - bob smith\n",
			`f.yaml:6: signaling.groups.residents[1]: "bob smith" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"group member twice", "signaling:\n  groups:\n    residents: [alice, alice]\n", `f.yaml:4: signaling.groups.residents[1]: "alice" is listed twice`},
		{"group name", "signaling:\n  groups:\n    residents: []\n    \"all people\": []\n", `f.yaml:5: signaling.groups.all people: group name must match ^[A-Za-z0-9_-]{1,64}$`},
		{"directory user", "signaling:\n  directory:\n    - {user: \"\"}\n", `f.yaml:4: signaling.directory[0].user: "" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"directory duplicate", "signaling:\n  directory:\n    - {user: a}\n    - {user: a}\n", `f.yaml:5: signaling.directory[1].user: "a" is already listed at signaling.directory[0]`},

		// calling
		{"invite timeout low", "calling:\n  invite_timeout: 4s\n", `f.yaml:3: calling.invite_timeout: must be between 5s and 5m0s`},
		{"invite timeout high", "calling:\n  invite_timeout: 301s\n", `f.yaml:3: calling.invite_timeout: must be between 5s and 5m0s`},
		{"doorbell group exists", "calling:\n  doorbell:\n    group: staff\n", `f.yaml:4: calling.doorbell.group: group "staff" is not defined in signaling.groups`},
		{"default doorbell group exists", "signaling:\n  groups: {staff: [a]}\ncalling:\n  auto_answer: false\n",
			`f.yaml:4: calling.doorbell.group: group "residents" is not defined in signaling.groups`},
		{"doorbell both", "calling:\n  doorbell: {group: residents, users: [a]}\n", `f.yaml:3: calling.doorbell: give group or users, not both`},
		{"doorbell neither", "calling:\n  doorbell: {group: \"\"}\n", `f.yaml:3: calling.doorbell: give a group or a list of users to ring`},
		{"doorbell users ids", "calling:\n  doorbell:\n    users: [a, \"b/c\"]\n", `f.yaml:4: calling.doorbell.users[1]: "b/c" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"door users ids", "calling:\n  door_users:\n    - \"+\"\n", `f.yaml:4: calling.door_users[0]: "+" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"callers ids", "calling:\n  callers: [alice, \"a b\"]\n", `f.yaml:3: calling.callers[1]: "a b" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},

		// http
		{"http listen required", "http:\n  listen: \"\"\n", `f.yaml:3: http.listen: required`},
		{"http listen parse", "http:\n  listen: \"[::1\"\n", `f.yaml:3: http.listen: must be host:port or :port, got "[::1"`},
		{"http cert pair", "http:\n  key_file: /etc/k.pem\n", `f.yaml:2: http: give both cert_file and key_file, or neither`},

		// media
		{"turn scheme", "media:\n  turn_servers:\n    - url: stun:turn.example.org\n",
			`f.yaml:4: media.turn_servers[0].url: must be a turn: or turns: URL with a host, got "stun:turn.example.org"`},
		{"turn no host", "media:\n  turn_servers:\n    - {url: \"turn:\"}\n", `f.yaml:4: media.turn_servers[0].url: must be a turn: or turns: URL with a host, got "turn:"`},
		{"turn bad port", "media:\n  turn_servers:\n    - {url: \"turn:host:0\"}\n", `f.yaml:4: media.turn_servers[0].url: must be a turn: or turns: URL with a host, got "turn:host:0"`},
		{"turn credential pair", "media:\n  turn_servers:\n    - {url: \"turns:host:5349\", username: u}\n", `f.yaml:4: media.turn_servers[0]: give both username and credential, or neither`},
		{"stun scheme", "media:\n  stun_servers: [\"turn:host\"]\n", `f.yaml:3: media.stun_servers[0]: must be a stun: or stuns: URL with a host, got "turn:host"`},
		{"udp port range", "media:\n  udp_port: 65536\n", `f.yaml:3: media.udp_port: must be between 0 and 65535, got 65536`},
		{"ice restart timeout", "media:\n  ice_restart_timeout: 0s\n", `f.yaml:3: media.ice_restart_timeout: must be between 1s and 5m0s`},

		// camera
		{"camera width positive", "camera:\n  devices:\n    - {name: c, device: /dev/video0, width: 0}\n", `f.yaml:4: camera.devices[0].width: must be between 16 and 4096, got 0`},
		{"camera height sane", "camera:\n  devices:\n    - name: c\n      device: /dev/video0\n      height: 100000\n", `f.yaml:6: camera.devices[0].height: must be between 16 and 4096, got 100000`},
		{"camera fps positive", "camera:\n  devices:\n    - name: c\n      device: /dev/video0\n      fps: -1\n", `f.yaml:6: camera.devices[0].fps: must be between 1 and 120, got -1`},
		{"camera odd size", "camera:\n  devices:\n    - {name: c, device: /dev/video0, width: 641}\n", `f.yaml:4: camera.devices[0]: width and height must be even (4:2:0 video)`},
		{"camera format", "camera:\n  devices:\n    - {name: c, device: /dev/video0, format: H265}\n", `f.yaml:4: camera.devices[0].format: must be one of "", "I420", "NV12", "NV21", "YUYV", "UYVY", "MJPEG", "H264", got "H265"`},
		{"pattern noise on a camera", "camera:\n  devices:\n    - {name: c, device: /dev/video0, pattern_noise: 4}\n", `f.yaml:4: camera.devices[0].pattern_noise: only for device test-pattern`},
		{"pattern noise range", "camera:\n  devices:\n    - {name: c, device: test-pattern, pattern_noise: 13}\n", `f.yaml:4: camera.devices[0].pattern_noise: must be between 0 and 12, got 13`},
		{"camera device path", "camera:\n  devices:\n    - {name: c, device: video0}\n", `f.yaml:4: camera.devices[0].device: must be an absolute path, got "video0"`},
		{"camera command", "camera:\n  devices:\n    - {name: c, device: pipe, command: [\"\"]}\n", `f.yaml:4: camera.devices[0].command: the program must not be empty`},
		{"camera duplicate name", "camera:\n  devices:\n    - {name: c, device: /dev/video0}\n    - {name: c, device: test-pattern}\n", `f.yaml:5: camera.devices[1].name: "c" is already used by camera.devices[0]`},
		{"camera no source", "camera:\n  devices: []\n  fallback_test_pattern: false\n", `f.yaml:3: camera.devices: no video source: list a device, enable fallback_test_pattern, or set media.video: false`},
		{"camera bitrate", "camera:\n  bitrate: 10\n", `f.yaml:3: camera.bitrate: must be between 50000 and 20000000, got 10`},
		{"camera encoder", "camera:\n  encoder: vaapi\n", `f.yaml:3: camera.encoder: must be one of "auto", "hardware", "openh264", got "vaapi"`},
		{"camera encoder device", "camera:\n  encoder_device: video11\n", `f.yaml:3: camera.encoder_device: must be an absolute path, got "video11"`},
		{"camera keyframe interval", "camera:\n  keyframe_interval: 2h\n", `f.yaml:3: camera.keyframe_interval: must be between 100ms and 1m0s`},

		// audio
		{"audio backend enum", "audio:\n  backend: pulse\n", `f.yaml:3: audio.backend: must be one of "auto", "alsa", "null", got "pulse"`},
		{"volume range", "audio:\n  volume: 101\n", `f.yaml:3: audio.volume: must be between 0 and 100, got 101`},
		{"volume negative", "audio:\n  volume: -1\n", `f.yaml:3: audio.volume: must be between 0 and 100, got -1`},
		{"mic bitrate", "audio:\n  mic_bitrate: 1000\n", `f.yaml:3: audio.mic_bitrate: must be between 6000 and 510000, got 1000`},
		{"echo tail", "audio:\n  echo_tail: 5ms\n", `f.yaml:3: audio.echo_tail: must be between 20ms and 1s`},
		{"echo delay", "audio:\n  echo_delay: 2s\n", `f.yaml:3: audio.echo_delay: must be between 0s and 1s`},
		{"mic complexity", "audio:\n  mic_complexity: 11\n", `f.yaml:3: audio.mic_complexity: must be between 1 and 10, got 11`},

		// gpio
		{"gpio backend enum", "gpio:\n  backend: sysfs\n", `f.yaml:3: gpio.backend: must be one of "auto", "chip", "sim", got "sysfs"`},
		{"long press range", "gpio:\n  buttons:\n    - name: call\n      line: GPIO17\n      long_press: 100ms\n",
			`f.yaml:6: gpio.buttons[0].long_press: must be between 200ms and 10s`},
		{"debounce range", "gpio:\n  buttons:\n    - {name: call, line: GPIO17, debounce: 2s}\n", `f.yaml:4: gpio.buttons[0].debounce: must be between 0s and 1s`},
		{"bias enum", "gpio:\n  buttons:\n    - {name: call, line: GPIO17, bias: up}\n", `f.yaml:4: gpio.buttons[0].bias: must be one of "as-is", "disabled", "pull-up", "pull-down", got "up"`},
		{"line both", "gpio:\n  buttons:\n    - {name: call, line: GPIO17, chip: gpiochip0, offset: 17}\n", `f.yaml:4: gpio.buttons[0]: give line or chip+offset, not both`},
		{"line neither", "gpio:\n  buttons:\n    - name: call\n", `f.yaml:4: gpio.buttons[0]: give line (a line name such as GPIO17) or chip and offset`},
		{"line with offset", "gpio:\n  leds:\n    - name: s\n      line: GPIO27\n      offset: 3\n", `f.yaml:6: gpio.leds[0].offset: only meaningful with chip; remove it when line is given`},
		{"chip without offset", "gpio:\n  leds:\n    - name: s\n      chip: gpiochip0\n", `f.yaml:4: gpio.leds[0].offset: required with chip and must be 0 or more`},
		{"offset without chip", "gpio:\n  relay:\n    line: \"\"\n    offset: 3\n", `f.yaml:5: gpio.relay.offset: given without chip`},
		{"chip name", "gpio:\n  leds:\n    - {name: s, chip: \"/dev/\", offset: 1}\n", `f.yaml:4: gpio.leds[0].chip: must be a chip name such as gpiochip0 or /dev/gpiochip0, got "/dev/"`},
		{"button name unique", "gpio:\n  buttons:\n    - {name: call, line: GPIO17}\n    - {name: call, line: GPIO18}\n", `f.yaml:5: gpio.buttons[1].name: "call" is already used by gpio.buttons[0]`},
		{"led name unique", "gpio:\n  leds:\n    - {name: s, line: GPIO20}\n    - {name: s, line: GPIO21}\n", `f.yaml:5: gpio.leds[1].name: "s" is already used by gpio.leds[0]`},
		{"led name id", "gpio:\n  leds:\n    - {name: \"\", line: GPIO20}\n", `f.yaml:4: gpio.leds[0].name: must match ^[A-Za-z0-9_-]{1,64}$`},
		{"line used twice led", "gpio:\n  leds:\n    - {name: s, line: GPIO17}\n", `f.yaml:4: gpio.leds[0]: line GPIO17 is already used by gpio.buttons[0]`},
		{"line used twice chip", "gpio:\n  buttons:\n    - {name: a, chip: gpiochip0, offset: 5}\n    - {name: b, chip: gpiochip0, offset: 5}\n", `f.yaml:5: gpio.buttons[1]: line gpiochip0:5 is already used by gpio.buttons[0]`},
		{"line used twice relay", "gpio:\n  relay:\n    line: GPIO27\n", `f.yaml:3: gpio.relay: line GPIO27 is already used by gpio.leds[0]`},
		{"line used twice bell", "gpio:\n  bell: {line: GPIO22}\n", `f.yaml:3: gpio.bell: line GPIO22 is already used by gpio.relay`},
		{"relay pulse positive", "gpio:\n  relay:\n    pulse: 0s\n", `f.yaml:4: gpio.relay.pulse: must be greater than 0s`},
		{"relay pulse <= max", "gpio:\n  relay:\n    pulse: 10s\n    max: 5s\n", `f.yaml:4: gpio.relay.pulse: must not exceed gpio.relay.max (5s)`},
		{"relay max <= 30s", "gpio:\n  relay:\n    pulse: 3s\n    max: 31s\n", `f.yaml:5: gpio.relay.max: must be greater than 0s and at most 30s`},
		// homeassistant
		{"ha broker scheme", "homeassistant:\n  broker: http://ha:1883\n", `f.yaml:3: homeassistant.broker: must be a tcp://, ssl://, ws:// or wss:// URL`},
		{"ha node id", "homeassistant:\n  node_id: front door\n", `f.yaml:3: homeassistant.node_id: must match ^[A-Za-z0-9_-]{1,64}$`},
		{"ha prefix", "homeassistant:\n  discovery_prefix: \"ha/#\"\n", `f.yaml:3: homeassistant.discovery_prefix: must be a non-empty topic without wildcards`},
		{"ha enabled without broker", "homeassistant:\n  enabled: true\n", `f.yaml:2: homeassistant.broker: required when homeassistant.enabled is true`},
		// whep
		{"whep enabled without users", "whep:\n  enabled: true\n", `f.yaml:2: whep.users: required when whep.enabled is true: the users whose tokens may watch`},
		{"whep user", "whep:\n  users: [go2rtc, \"bad user\"]\n", `f.yaml:3: whep.users[1]: "bad user" is not a valid user ID (must match ^[A-Za-z0-9_-]{1,64}$)`},
		{"whep max viewers", "whep:\n  max_viewers: 0\n", `f.yaml:3: whep.max_viewers: must be between 1 and 16, got 0`},
		{"visitor log entries", "visitor_log:\n  max_entries: 0\n", `f.yaml:3: visitor_log.max_entries: must be between 1 and 100000, got 0`},
		{"visitor log bytes", "visitor_log:\n  max_bytes: 1000\n", `f.yaml:3: visitor_log.max_bytes: must be from 1048576 (1 MiB: a few pictures) to 1099511627776 (1 TiB), got 1000`},
		{"voice message greeting", "visitor_log:\n  voice_message:\n    greeting: hello.wav\n", `f.yaml:4: visitor_log.voice_message.greeting: must be an absolute path, got "hello.wav"`},
		{"voice message length", "visitor_log:\n  voice_message:\n    max_duration: 5m\n", `f.yaml:4: visitor_log.voice_message.max_duration: must be between 1s and 2m0s`},
		{"voice message without the log", "visitor_log:\n  enabled: false\n  voice_message:\n    enabled: true\n", `f.yaml:5: visitor_log.voice_message.enabled: needs visitor_log.enabled: the message goes in the ring's entry`},
		{"voice message silence", "visitor_log:\n  voice_message:\n    silence: 500ms\n", `f.yaml:4: visitor_log.voice_message.silence: must be 0s (off) or between 1s and 1m0s`},
		{"bell pulse", "gpio:\n  bell:\n    line: GPIO5\n    pulse: 11s\n", `f.yaml:5: gpio.bell.pulse: must be greater than 0s and at most 10s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte("version: 1\n"+tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			e := only(t, err)
			if got := e.Error(); got != tt.want {
				t.Errorf("error\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestValidBoundaries checks that the edges of each range are accepted, so
// the rules above reject exactly what they say.
func TestValidBoundaries(t *testing.T) {
	for _, y := range []string{
		"calling: {invite_timeout: 5s}",
		"calling: {invite_timeout: 300s}",
		"gpio: {relay: {pulse: 30s, max: 30s}}",
		"gpio: {relay: {line: \"\", pulse: 0s}}",
		"gpio: {buttons: [{name: call, line: GPIO17, long_press: 200ms, debounce: 0s}]}",
		"gpio: {buttons: [{name: call, line: GPIO17, long_press: 10s, debounce: 1s}]}",
		"gpio: {buttons: [{name: call, chip: /dev/gpiochip0, offset: 0}]}",
		"audio: {volume: 0, backend: \"null\"}",
		"media: {udp_port: 65535, stun_servers: [\"stun:[2001:db8::1]:3478\", \"stuns:stun.example.org\"]}",
		"media: {turn_servers: [{url: \"turns:10.0.0.1:5349?transport=tcp\"}]}",
		"camera: {devices: [{name: c, device: test-pattern, width: 4096, height: 16, fps: 120}]}",
		"camera: {devices: [], fallback_test_pattern: false}\nmedia: {video: false}",
		"signaling: {embedded: {listen: \"\"}}\nhttp: {listen: \"127.0.0.1:0\"}",
		"signaling: {embedded: {listen: \"[::1]:1883\"}}\nhttp: {listen: \"localhost:8443\"}",
		"signaling: {broker: external, external: {url: \"ssl://broker:8883\", web_url: \"wss://broker/mqtt\", username: door, password: pw}}",
		"calling: {doorbell: {group: \"\", users: [alice, bob]}}",
	} {
		if _, err := Parse("f.yaml", []byte("version: 1\n"+y+"\n")); err != nil {
			t.Errorf("Parse(%q) = %v, want valid", y, err)
		}
	}
}

func TestValidateReportsAllErrorsSorted(t *testing.T) {
	_, err := Parse("f.yaml", []byte(`version: 1
gpio:
  relay: {pulse: 0s}
audio:
  volume: 500
log:
  level: loud
`))
	errs := Errors(err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Path)
	}
	want := []string{"gpio.relay.pulse", "audio.volume", "log.level"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("error paths = %v, want %v (sorted by line); err = %v", got, want, err)
	}
}

func TestValidateInCode(t *testing.T) {
	c := Default()
	c.Calling.InviteTimeout = time.Hour
	c.Version = 0
	err := c.Validate()
	errs := Errors(err)
	if len(errs) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	// Without a file there is no file or line to name, only the key.
	for _, e := range errs {
		if e.File != "" || e.Line != 0 || !strings.HasPrefix(e.Error(), e.Path+": ") {
			t.Errorf("error %q: want just path: msg", e)
		}
	}
	if errs[0].Path != "calling.invite_timeout" && errs[1].Path != "calling.invite_timeout" {
		t.Errorf("errors %v do not name calling.invite_timeout", err)
	}
}
