package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sameConfig compares two configs ignoring where they came from.
func sameConfig(a, b *Config) bool {
	x, y := *a, *b
	x.src, y.src = nil, nil
	return reflect.DeepEqual(x, y)
}

// only returns the single *Error in err, failing the test otherwise.
func only(t *testing.T, err error) *Error {
	t.Helper()
	errs := Errors(err)
	if len(errs) != 1 {
		t.Fatalf("want exactly one error, got %d: %v", len(errs), err)
	}
	return errs[0]
}

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.File() != "" {
		t.Errorf("Default().File() = %q, want empty", c.File())
	}
	// The zero-config run: embedded broker, test pattern fallback,
	// automatic audio (null without a card), automatic GPIO (sim without a chip).
	if c.Signaling.Broker != BrokerEmbedded || !c.Camera.FallbackTestPattern ||
		c.Audio.Backend != AudioAuto || c.GPIO.Backend != GPIOAuto {
		t.Errorf("Default() = %+v, not a zero-config setup", c)
	}
	if got := c.TokenKeyFile(); got != "/var/lib/intercomd/token.key" {
		t.Errorf("TokenKeyFile() = %q", got)
	}
}

func TestMinimalFileGetsDefaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !sameConfig(c, Default()) {
		t.Errorf("Parse(version: 1) = %+v\nwant Default() = %+v", c, Default())
	}
	if c.File() != "min.yaml" {
		t.Errorf("File() = %q", c.File())
	}
}

func TestExplicitValuesBeatDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(`version: 1
media:
  video: false
audio:
  volume: 0
  ringtone: false
camera:
  devices: []
  fallback_test_pattern: false
gpio:
  buttons: []
  leds:
  relay: {line: ""}
  bell: {line: GPIO5}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Media.Video || c.Audio.Volume != 0 || c.Audio.Ringtone || c.Camera.FallbackTestPattern {
		t.Errorf("explicit false/0 replaced by defaults: %+v %+v %+v", c.Media, c.Audio, c.Camera)
	}
	if len(c.Camera.Devices) != 0 || len(c.GPIO.Buttons) != 0 || len(c.GPIO.LEDs) != 0 {
		t.Errorf("explicit empty lists replaced by defaults: %+v %+v", c.Camera.Devices, c.GPIO)
	}
	if c.GPIO.Relay.Configured() {
		t.Errorf("relay with line \"\" should be absent, got %+v", c.GPIO.Relay)
	}
	if c.GPIO.Bell.ID() != "GPIO5" || c.GPIO.Bell.Pulse != time.Second || c.GPIO.Bell.Offset != -1 {
		t.Errorf("bell = %+v, want GPIO5 with default pulse 1s and offset -1", c.GPIO.Bell)
	}
}

func TestListElementDefaults(t *testing.T) {
	c, err := Parse("x.yaml", []byte(`version: 1
signaling:
  directory: [{user: bob}]
camera:
  devices: [{device: test-pattern}, {name: usb, device: /dev/video2, fps: 15}]
gpio:
  buttons: [{name: call, chip: gpiochip0, offset: 4}, {name: hold, line: GPIO6, debounce: 0s, active_low: false}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Signaling.Directory[0].Name; got != "bob" {
		t.Errorf("directory name default = %q, want the user ID", got)
	}
	want := []CameraDevice{
		{Name: "camera0", Device: TestPatternDevice, Width: 640, Height: 480, FPS: 30},
		{Name: "usb", Device: "/dev/video2", Width: 640, Height: 480, FPS: 15},
	}
	if !reflect.DeepEqual(c.Camera.Devices, want) {
		t.Errorf("camera devices = %+v\nwant %+v", c.Camera.Devices, want)
	}
	b := c.GPIO.Buttons
	if b[0].ID() != "gpiochip0:4" || !b[0].ActiveLow || b[0].Bias != BiasPullUp || b[0].Debounce != 20*time.Millisecond || b[0].LongPress != 1500*time.Millisecond {
		t.Errorf("button 0 = %+v", b[0])
	}
	if b[1].Debounce != 0 || b[1].ActiveLow || b[1].Offset != -1 {
		t.Errorf("button 1 = %+v, want debounce 0 and active_low false kept", b[1])
	}
}

func TestExternalWebURLDefaultsToWebSocketURL(t *testing.T) {
	c, err := Parse("x.yaml", []byte(`version: 1
signaling:
  broker: external
  external: {url: "wss://broker.example.org:8084/mqtt"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Signaling.External.WebURL != "wss://broker.example.org:8084/mqtt" {
		t.Errorf("web_url = %q", c.Signaling.External.WebURL)
	}
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "intercomd.yaml")

	c, err := load(missing, false, LoadOptions{})
	if err != nil {
		t.Fatalf("missing file at the default path: %v, want defaults", err)
	}
	if !sameConfig(c, Default()) {
		t.Errorf("missing default file gave %+v, want Default()", c)
	}

	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(explicit missing) = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestLoadDefaultPath(t *testing.T) {
	if _, err := os.Stat(DefaultPath); err == nil {
		t.Skipf("%s exists on this machine; the zero-config case cannot be observed", DefaultPath)
	}
	c, err := Load("")
	if err != nil || !sameConfig(c, Default()) {
		t.Fatalf("Load(\"\") = %+v, %v; want Default()", c, err)
	}
}

func TestLoadReadsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intercomd.yaml")
	if err := os.WriteFile(path, []byte("version: 1\nlog: {level: debug}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != LogDebug || c.File() != path {
		t.Errorf("Load = level %q file %q", c.Log.Level, c.File())
	}

	if err := os.WriteFile(path, []byte("version: 1\nlog: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	want := path + `:2: log.level: must be one of "debug", "info", "warn", "error", got "loud"`
	if e := only(t, err); e.Error() != want {
		t.Errorf("Load error = %q\nwant %q", e, want)
	}
}

func TestLoadRejectsHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte("version: 1\n"+strings.Repeat("#", maxFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if e := only(t, err); e.File != path || !strings.Contains(e.Msg, "larger than") {
		t.Errorf("Load(huge) = %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // the whole error text
	}{
		{"empty file", "", `f.yaml:1: version: required; the supported version is 1`},
		{"comment only", "# nothing\n", `f.yaml:1: version: required; the supported version is 1`},
		{"missing version", "log:\n  level: info\n", `f.yaml:1: version: required; the supported version is 1`},
		{"unsupported version", "log: {}\nversion: 2\n", `f.yaml:2: version: unsupported version 2; the supported version is 1`},
		{"version string", "version: one\n", `f.yaml:1: version: unsupported version "one"; the supported version is 1`},
		{"unsupported version hides other errors", "version: 7\nbogus: 1\n", `f.yaml:1: version: unsupported version 7; the supported version is 1`},
		{"not a mapping", "- version\n", `f.yaml:1: must be a mapping of keys to values`},
		{"syntax error", "version: 1\nlog: [\n", `f.yaml:2: invalid YAML: did not find expected node content`},
		{"tab indentation", "version: 1\nlog:\n\tlevel: info\n", `f.yaml:3: invalid YAML: found character that cannot start any token`},
		{"two documents", "version: 1\n---\nversion: 1\n", `f.yaml:2: more than one YAML document; a configuration is one document`},
		{"unknown top-level key", "version: 1\nloging: {}\n", `f.yaml:2: loging: unknown key (did you mean log?)`},
		{"unknown nested key", "version: 1\ngpio:\n  buttons:\n    - name: call\n      line: GPIO17\n      long_pres: 2s\n", `f.yaml:6: gpio.buttons[0].long_pres: unknown key (did you mean long_press?)`},
		{"unknown key no suggestion", "version: 1\naudio: {zzzzzzzz: 1}\n", `f.yaml:2: audio.zzzzzzzz: unknown key`},
		{"duplicate key", "version: 1\nlog:\n  level: info\n  level: debug\n", `f.yaml:4: log.level: duplicate key (first set at line 3)`},
		{"duplicate group", "version: 1\nsignaling:\n  groups:\n    a: []\n    a: []\n", `f.yaml:5: signaling.groups.a: duplicate key (first set at line 4)`},
		{"int as word", "version: 1\ncamera:\n  devices:\n    - {name: c, device: /dev/video0, fps: fast}\n", `f.yaml:4: camera.devices[0].fps: must be an integer, got "fast"`},
		{"int as float", "version: 1\naudio: {volume: 50.5}\n", `f.yaml:2: audio.volume: must be an integer, got "50.5"`},
		{"int quoted", "version: 1\naudio: {volume: \"50\"}\n", `f.yaml:2: audio.volume: must be an integer, got "50"`},
		{"int overflow", "version: 1\naudio: {volume: 99999999999999999999}\n", `f.yaml:2: audio.volume: must be an integer, got "99999999999999999999"`},
		{"int null", "version: 1\naudio: {volume: }\n", `f.yaml:2: audio.volume: must be an integer, got nothing`},
		{"bool as yes", "version: 1\nmedia: {video: yes}\n", `f.yaml:2: media.video: must be true or false, got "yes"`},
		{"duration as int", "version: 1\ncalling: {invite_timeout: 30}\n", `f.yaml:2: calling.invite_timeout: must be a duration such as "1.5s" or "200ms", got "30"`},
		{"duration bad unit", "version: 1\ncalling: {invite_timeout: 30 sec}\n", `f.yaml:2: calling.invite_timeout: must be a duration such as "1.5s" or "200ms", got "30 sec"`},
		{"string as list", "version: 1\ndevice: {name: [a]}\n", `f.yaml:2: device.name: must be a string, got a list`},
		{"list as string", "version: 1\ncalling: {door_users: alice}\n", `f.yaml:2: calling.door_users: must be a list, got "alice"`},
		{"section as scalar", "version: 1\nhttp: on\n", `f.yaml:2: http: must be a mapping, got "on"`},
		{"map as list", "version: 1\nsignaling: {groups: [a]}\n", `f.yaml:2: signaling.groups: must be a mapping, got a list`},
		{"non-string key", "version: 1\nlog: {[a]: b}\n", `f.yaml:2: log: keys must be plain strings, got a list`},
		{"secret bad form", "version: 1\nsignaling: {external: {password: [a]}}\n", `f.yaml:2: signaling.external.password: must be a string or a mapping with file or credential, got a list`},
		{"secret both forms", "version: 1\nsignaling:\n  external:\n    password: {file: a, credential: b}\n", `f.yaml:4: signaling.external.password: give exactly one of file or credential`},
		{"secret unknown form", "version: 1\nsignaling:\n  external:\n    password: {env: X}\n", `f.yaml:4: signaling.external.password.env: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error\n got %q\nwant %q", got, tt.want)
			}
			only(t, err)
		})
	}
}

func TestMergeKeyRejected(t *testing.T) {
	_, err := Parse("f.yaml", []byte("version: 1\nlog:\n  <<: {level: info}\n"))
	want := `f.yaml:3: log: keys must be plain strings, got "<<"`
	if e := only(t, err); e.Error() != want {
		t.Errorf("got %q, want %q", e, want)
	}
}

func TestAliasesAreFollowed(t *testing.T) {
	c, err := Parse("f.yaml", []byte(`version: 1
signaling:
  groups:
    residents: &people [alice, bob]
calling:
  door_users: *people
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Calling.DoorUsers, []string{"alice", "bob"}) {
		t.Errorf("door_users = %v", c.Calling.DoorUsers)
	}
}

func TestAllDecodeErrorsReportedInLineOrder(t *testing.T) {
	_, err := Parse("f.yaml", []byte(`version: 1
media:
  video: maybe
audio:
  volume: loud
  bogus: 1
`))
	var lines []int
	for _, e := range Errors(err) {
		if e.File != "f.yaml" {
			t.Errorf("error %q does not name the file", e)
		}
		lines = append(lines, e.Line)
	}
	if !reflect.DeepEqual(lines, []int{3, 5, 6}) {
		t.Errorf("error lines = %v, want [3 5 6]; err = %v", lines, err)
	}
	var first *Error
	if !errors.As(err, &first) || first.Path != "media.video" {
		t.Errorf("errors.As gives %v, want the media.video error", first)
	}
}

func TestParseEmptyNameStillNamed(t *testing.T) {
	_, err := Parse("", []byte("bogus: 1\n"))
	if e := only(t, err); e.File == "" {
		t.Errorf("error %q has no file name", e)
	}
}

func TestLogLevelSlog(t *testing.T) {
	for lvl, want := range map[LogLevel]string{LogDebug: "DEBUG", LogInfo: "INFO", LogWarn: "WARN", LogError: "ERROR", "": "INFO"} {
		if got := lvl.Slog().String(); got != want {
			t.Errorf("%q.Slog() = %s, want %s", lvl, got, want)
		}
	}
}

// TestEnumNamedNull: audio.backend's value null is the word, not YAML's
// null, written bare or quoted.
func TestEnumNamedNull(t *testing.T) {
	for _, src := range []string{"audio:\n  backend: null\n", "audio:\n  backend: \"null\"\n"} {
		c, err := Parse("t.yaml", []byte("version: 1\n"+src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if c.Audio.Backend != AudioNull {
			t.Errorf("%q: backend %q, want null", src, c.Audio.Backend)
		}
	}
}

// Who may call the device: calling.callers when given, otherwise everyone
// the configuration names, never the device itself; nobody when it names
// nobody.
func TestCallers(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"default names nobody", "version: 1\n", ""},
		{"directory groups door and doorbell users", `version: 1
device: {user: door}
signaling:
  groups: {residents: [bob, alice], staff: [door, carol]}
  directory: [{user: erin}, {user: alice}]
calling:
  door_users: [frank]
  doorbell: {users: [gina]}
`, "alice,bob,carol,erin,frank,gina"},
		{"listed", `version: 1
signaling:
  groups: {residents: [bob, alice]}
calling:
  callers: [carol, alice]
`, "alice,carol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Callers()
			if got == nil || strings.Join(got, ",") != tc.want {
				t.Errorf("Callers() = %#v, want %q", got, tc.want)
			}
		})
	}
}
