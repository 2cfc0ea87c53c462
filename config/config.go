// Package config defines intercomd's YAML configuration: its schema, its
// defaults, its validation rules and the split between settings that can be
// reloaded on SIGHUP and settings that need a restart.
//
// The schema is one versioned YAML file (version: 1), by default
// /etc/intercomd/intercomd.yaml. Decoding is strict: unknown keys, duplicate
// keys and values of the wrong type are errors, and every error, whether found
// while decoding or while validating, names the file, the line, the key path
// and the rule broken:
//
//	/etc/intercomd/intercomd.yaml:12: gpio.buttons[0].long_press: must be between 200ms and 10s
//
// All errors of a file are reported at once, joined with errors.Join; each is
// an *Error. Decoding errors are reported without validating (a half-decoded
// file would only produce noise); a version other than 1 is reported alone.
//
// Defaults are applied in one function, applyDefaults, to keys the file does
// not set: a key written with an explicit value (including false, 0, "" or an
// empty list) keeps that value. Default returns the configuration that runs
// with no file at all: an embedded broker, /dev/video0 or a test pattern,
// the first sound card or silence, and simulated GPIO when no GPIO chip exists.
//
// Secrets (the broker token secret, the external broker password, TURN
// credentials) are of type Secret, which never prints its value. They are read
// when the file is parsed, so a missing secret file is an error with a line.
//
// This package imports only the standard library and go.yaml.in/yaml/v3; it
// knows nothing of the hardware, media or MQTT packages, whose option structs
// are filled from a *Config by cmd/intercomd.
//
// Concurrency: Load, Parse, Default and Diff are safe to call from any
// goroutine. A *Config is a plain value; it is not modified after Parse
// returns it, so it may be shared read-only between goroutines. A reload
// builds a new *Config rather than changing the old one.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"time"
)

// DefaultPath is the configuration file read when none is named.
const DefaultPath = "/etc/intercomd/intercomd.yaml"

// Version is the only supported value of the version key.
const Version = 1

// maxFileSize bounds the configuration file; anything larger is not a
// configuration file.
const maxFileSize = 1 << 20

// Config is the whole configuration of intercomd. Field names map to YAML keys
// through their yaml tags.
type Config struct {
	// Version of the schema; must be 1.
	Version   int       `yaml:"version"`
	Device    Device    `yaml:"device"`
	Log       Log       `yaml:"log"`
	Signaling Signaling `yaml:"signaling"`
	Calling   Calling   `yaml:"calling"`
	HTTP      HTTP      `yaml:"http"`
	Push      Push      `yaml:"push"`
	Media     Media     `yaml:"media"`
	Camera    Camera    `yaml:"camera"`
	Audio     Audio     `yaml:"audio"`
	GPIO      GPIO      `yaml:"gpio"`
	// HomeAssistant publishes the door station to Home Assistant through
	// MQTT discovery.
	HomeAssistant HomeAssistant `yaml:"homeassistant"`
	// WHEP serves the door's camera and microphone to restreamers such as
	// go2rtc (Frigate, Home Assistant) at /whep on the HTTP port.
	WHEP WHEP `yaml:"whep"`
	// VisitorLog records the doorbell's rings in the state directory.
	VisitorLog VisitorLog `yaml:"visitor_log"`

	// src records where the configuration came from, for error messages.
	// It is nil for a Config built in code.
	src *source
}

// Device identifies this intercom.
type Device struct {
	// User is this device's user ID on the signaling network,
	// matching ^[A-Za-z0-9_-]{1,64}$.
	User string `yaml:"user"`
	// Name is the human-readable name shown to phones.
	Name string `yaml:"name"`
	// StateDir holds state created at run time: the token secret, the
	// device's certificate authority and HTTPS certificate. Must be
	// absolute.
	StateDir string `yaml:"state_dir"`
}

// LogLevel is the minimum level logged.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Slog returns the slog level for l; an unknown level maps to slog.LevelInfo.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// LogFormat selects the log output format.
type LogFormat string

// Log formats.
const (
	// LogFormatAuto logs journald-friendly text (no timestamps) when running
	// under systemd and plain text otherwise.
	LogFormatAuto LogFormat = "auto"
	LogFormatText LogFormat = "text"
	LogFormatJSON LogFormat = "json"
)

// Log configures logging.
type Log struct {
	Level  LogLevel  `yaml:"level"`
	Format LogFormat `yaml:"format"`
}

// BrokerMode selects where the MQTT broker runs.
type BrokerMode string

// Broker modes.
const (
	// BrokerEmbedded runs an MQTT broker inside intercomd.
	BrokerEmbedded BrokerMode = "embedded"
	// BrokerExternal connects to an MQTT broker elsewhere.
	BrokerExternal BrokerMode = "external"
)

// Signaling configures the MQTT signaling network.
type Signaling struct {
	// TopicPrefix is the first level of every MQTT topic intercomd uses.
	TopicPrefix string         `yaml:"topic_prefix"`
	Broker      BrokerMode     `yaml:"broker"`
	Embedded    EmbeddedBroker `yaml:"embedded"`
	External    ExternalBroker `yaml:"external"`
	// Groups maps a group name to its member user IDs. The embedded broker
	// uses groups for its ACL; the doorbell may ring a group.
	Groups map[string][]string `yaml:"groups"`
	// Directory lists the people and devices the phone app shows.
	Directory []DirectoryEntry `yaml:"directory"`
}

// EmbeddedBroker configures the broker run inside intercomd.
type EmbeddedBroker struct {
	// Listen is the MQTT-over-TCP address; "" disables TCP. MQTT over
	// WebSocket is always served on the HTTP port at /mqtt.
	Listen string `yaml:"listen"`
	// TokenSecret signs the access tokens clients log in with. When unset,
	// the daemon keeps one in TokenKeyFile, creating it on first start.
	TokenSecret Secret `yaml:"token_secret"`
	// MaxConnectionsPerUser bounds the simultaneous connections of one user
	// (the daemon's own aside); past it a connection is refused.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`
}

// ExternalBroker configures the connection to a broker run elsewhere.
type ExternalBroker struct {
	// URL is the broker address for the daemon: tcp://, ssl://, ws:// or wss://.
	URL string `yaml:"url"`
	// WebURL is the ws:// or wss:// address the phone web app connects to.
	// It defaults to URL when URL is ws:// or wss://.
	WebURL   string `yaml:"web_url"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// CAFile is a PEM bundle used to verify the broker; "" means the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DirectoryEntry is one person or device listed in the phone app.
type DirectoryEntry struct {
	User string `yaml:"user"`
	// Name defaults to User.
	Name string `yaml:"name"`
}

// Calling configures the calling state machine.
type Calling struct {
	// InviteTimeout is how long an invitation rings before it is
	// abandoned; 5s to 300s.
	InviteTimeout time.Duration `yaml:"invite_timeout"`
	// Doorbell is who a button press rings.
	Doorbell Doorbell `yaml:"doorbell"`
	// AutoAnswer makes the intercom accept incoming calls by itself.
	AutoAnswer bool `yaml:"auto_answer"`
	// DoorUsers may open the door during an accepted call.
	DoorUsers []string `yaml:"door_users"`
	// Callers may call the device; an invitation from anyone else is
	// refused unrung. Empty means the people the configuration knows:
	// see Config.Callers.
	Callers []string `yaml:"callers"`
	// MultiDevice allows one user to be logged in on several devices: they
	// all ring, the first to answer takes the call (the default). When
	// false, a new login signs the user's other devices out. It is for the
	// phones: the device itself is one device, and a second login of its
	// own user replaces it.
	MultiDevice bool `yaml:"multi_device"`
}

// Doorbell names the ring targets: a group or a list of users, not both.
type Doorbell struct {
	Group string   `yaml:"group"`
	Users []string `yaml:"users"`
}

// DefaultMaxConnections is http.max_connections' default: far more than a
// household's phones hold (a few each), far fewer than the service's
// descriptor limit (LimitNOFILE in systemd/intercomd.service).
const DefaultMaxConnections = 256

// HTTP configures the HTTPS server (phone web app, MQTT over WebSocket).
type HTTP struct {
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are the server certificate; both or neither.
	// Neither means a certificate from the device's own certificate
	// authority, kept in the state directory (package web/devca).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Metrics serves /metrics in the Prometheus text format on this port:
	// calls by end reason, door openings, call state, call quality of
	// every peer, audio glitches (no call IDs, no user names). Off by
	// default: anyone who can reach the port can read it, so reach it
	// only from the monitoring host (a firewall rule, or a reverse proxy).
	Metrics bool `yaml:"metrics"`
	// MaxConnections bounds the connections the port holds at once,
	// HTTPS, plain HTTP and MQTT over WebSocket together; past it new ones
	// are closed at once. Idle ones are closed after a minute.
	MaxConnections int `yaml:"max_connections"`
}

// Push rings phones whose app is closed: Web Push to every browser a
// resident subscribed, and ntfy topics.
type Push struct {
	// Contact is the VAPID "sub" the push services may reach the device's
	// owner at: a mailto: or https: URL. Without it Web Push is off (the
	// app does not offer it): Apple refuses pushes without a real contact.
	Contact string `yaml:"contact"`
	// AppURL is the app's address as phones reach it (for ntfy's click
	// action), e.g. https://door.local:8443.
	AppURL string `yaml:"app_url"`
	// Ntfy lists ntfy topics that a user's rings are published to.
	Ntfy []Ntfy `yaml:"ntfy"`
}

// Ntfy is one user's ntfy topic.
type Ntfy struct {
	User string `yaml:"user"`
	// Server is the ntfy server, e.g. https://ntfy.sh.
	Server string `yaml:"server"`
	Topic  string `yaml:"topic"`
	// Token is an access token for a server with access control.
	Token Secret `yaml:"token"`
}

// HomeAssistant configures MQTT discovery for Home Assistant.
type HomeAssistant struct {
	// Enabled publishes the device; false removes what an earlier run
	// published (when Broker is set).
	Enabled bool `yaml:"enabled"`
	// Broker is the MQTT broker Home Assistant uses: tcp://, ssl://, ws://
	// or wss://.
	Broker   string `yaml:"broker"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// DiscoveryPrefix is Home Assistant's discovery prefix.
	DiscoveryPrefix string `yaml:"discovery_prefix"`
	// NodeID names the device in discovery topics; defaults to device.user.
	NodeID string `yaml:"node_id"`
	// AppURL is the link shown on the device page (configuration_url).
	AppURL string `yaml:"app_url"`
}

// WHEP configures the WHEP endpoint (/whep on http.listen): receive-only
// viewers of the camera and microphone, outside calls.
type WHEP struct {
	Enabled bool `yaml:"enabled"`
	// Users may watch: a token of one of them (intercomd usersig) is
	// accepted; required when enabled.
	Users []string `yaml:"users"`
	// MaxViewers is the number of viewers at once; more get 503.
	MaxViewers int `yaml:"max_viewers"`
}

// VisitorLog configures the record of the doorbell's rings: when, a
// snapshot of the camera, who answered or declined, who opened the door,
// how long the call lasted. The oldest entries go first.
type VisitorLog struct {
	Enabled bool `yaml:"enabled"`
	// MaxEntries is the number of rings kept.
	MaxEntries int `yaml:"max_entries"`
	// MaxBytes bounds the log's files (index, pictures and voice
	// messages) on disk.
	MaxBytes int64 `yaml:"max_bytes"`
	// VoiceMessage lets a visitor leave a message when nobody answers.
	VoiceMessage VoiceMessage `yaml:"voice_message"`
}

// VoiceMessage configures the visitor's voice message: when a ring ends
// with nobody answering (timed out, or nobody reachable; not when a
// resident declined or the visitor hung up), the door plays a greeting
// and records the microphone into the ring's visitor log entry. A new ring
// or call stops the recording at once, keeping what was said.
type VoiceMessage struct {
	Enabled bool `yaml:"enabled"`
	// Greeting is a WAV file (16-bit PCM, mono or stereo, at most 30 s)
	// played before the recording; empty plays a built-in chime and beep.
	Greeting string `yaml:"greeting"`
	// MaxDuration bounds a message.
	MaxDuration time.Duration `yaml:"max_duration"`
	// Silence ends a message once the visitor has been silent this long
	// (from the start too); 0 records to max_duration.
	Silence time.Duration `yaml:"silence"`
}

// Media configures WebRTC.
type Media struct {
	// STUNServers are stun: or stuns: URLs.
	STUNServers []string     `yaml:"stun_servers"`
	TURNServers []TURNServer `yaml:"turn_servers"`
	// UDPPort is one UDP port shared by all calls; 0 means ephemeral ports.
	UDPPort int `yaml:"udp_port"`
	// ICERestartTimeout is how long a disconnected call may try an ICE
	// restart before it is hung up; a phone that answered the door keeps
	// its place as long again, to rejoin (a reloaded app).
	ICERestartTimeout time.Duration `yaml:"ice_restart_timeout"`
	// Video enables sending video.
	Video bool `yaml:"video"`
}

// TURNServer is one TURN relay.
type TURNServer struct {
	// URL is a turn: or turns: URL, e.g. turn:turn.example.org:3478?transport=udp.
	URL        string `yaml:"url"`
	Username   string `yaml:"username"`
	Credential Secret `yaml:"credential"`
}

// TestPatternDevice is the CameraDevice.Device value naming the synthetic
// test-pattern source.
const TestPatternDevice = "test-pattern"

// RpicamDevice is the CameraDevice.Device value naming a Pi camera module,
// read as H.264 from rpicam-vid (libcamera) over a pipe.
const RpicamDevice = "rpicam"

// Camera configures video capture and encoding.
type Camera struct {
	// Devices are tried in order; the first that opens is used.
	Devices []CameraDevice `yaml:"devices"`
	// FallbackTestPattern uses the test pattern when no device opens.
	FallbackTestPattern bool `yaml:"fallback_test_pattern"`
	// Bitrate of the encoded video in bits per second.
	Bitrate int `yaml:"bitrate"`
	// KeyframeInterval is the time between forced key frames.
	KeyframeInterval time.Duration `yaml:"keyframe_interval"`
	// Encoder is the H.264 encoder: auto (the board's V4L2 encoder when present
	// and working, else openh264), hardware or openh264.
	Encoder string `yaml:"encoder"`
	// EncoderDevice is the hardware encoder's node (such as /dev/video11); ""
	// finds it.
	EncoderDevice string `yaml:"encoder_device"`
}

// CameraEncoders lists every accepted camera.encoder.
func CameraEncoders() []string { return []string{"auto", "hardware", "openh264"} }

// CameraFormats lists every accepted camera.devices[].format; "" lets the
// camera choose.
func CameraFormats() []string {
	return []string{"", "I420", "NV12", "NV21", "YUYV", "UYVY", "MJPEG", "H264"}
}

// CameraDevice is one candidate video source.
type CameraDevice struct {
	Name string `yaml:"name"`
	// Device is a V4L2 device path or TestPatternDevice.
	Device string `yaml:"device"`
	Width  int    `yaml:"width"`
	Height int    `yaml:"height"`
	FPS    int    `yaml:"fps"`
	// Format is the V4L2 pixel format wanted: I420, NV12, NV21, YUYV, UYVY
	// or MJPEG, or H264 to pass a camera's own H.264 through (constrained
	// baseline); "" lets the camera choose.
	Format string `yaml:"format"`
	// Command, when set, is a program writing H.264 (Annex B, constrained
	// baseline) to its standard output, passed through without re-encoding;
	// Device is then only a label.
	Command []string `yaml:"command"`
	// PatternNoise adds sensor-like noise of up to ± this many luma steps
	// to the test pattern (0..12), so that it loads the encoder and the
	// network like a camera does; test-pattern only.
	PatternNoise int `yaml:"pattern_noise"`
}

// AudioBackend selects the audio device layer.
type AudioBackend string

// Audio backends.
const (
	// AudioAuto uses ALSA when a sound card exists and null otherwise.
	AudioAuto AudioBackend = "auto"
	AudioALSA AudioBackend = "alsa"
	// AudioNull is a silent device paced in real time.
	AudioNull AudioBackend = "null"
)

// AudioBackends lists every accepted audio.backend.
func AudioBackends() []AudioBackend { return []AudioBackend{AudioAuto, AudioALSA, AudioNull} }

// Audio configures the microphone and speaker.
type Audio struct {
	Backend AudioBackend `yaml:"backend"`
	// Capture and Playback select devices by a substring of their name;
	// "" selects the first.
	Capture  string `yaml:"capture"`
	Playback string `yaml:"playback"`
	// Volume of the speaker, 0 to 100.
	Volume int `yaml:"volume"`
	// MicBitrate is the Opus bitrate of the microphone in bits per second.
	MicBitrate int `yaml:"mic_bitrate"`
	// MicComplexity is the Opus encoder's complexity, 1 to 10. libopus
	// defaults to 10, where encoding the voice costs nearly as much CPU as
	// encoding 640x480 video; 5 is what it suggests for constrained
	// devices and loses nothing audible on voice at 32 kbit/s. Lower saves
	// more CPU on small boards at some cost in quality.
	MicComplexity int `yaml:"mic_complexity"`
	// EchoCancel removes the speaker's echo from the microphone before it
	// is sent (SpeexDSP's echo canceller with residual echo suppression).
	// It runs only with a sound card and no test tone.
	EchoCancel bool `yaml:"echo_cancel"`
	// EchoTail is how long after the played sound the canceller looks for
	// its echo (room reverberation and the sound card's own delay); its
	// CPU grows with it.
	EchoTail time.Duration `yaml:"echo_tail"`
	// EchoDelay is playback-to-capture delay of the sound card beyond what
	// EchoTail covers, for cards that buffer a lot (some HATs: 370 ms).
	EchoDelay time.Duration `yaml:"echo_delay"`
	// Ringtone plays a ring on the speaker while an outgoing call rings.
	Ringtone bool `yaml:"ringtone"`
	// TestTone, when not 0, replaces the microphone with a sine of this many
	// Hz: for trying the intercom, and testing it, without a microphone.
	TestTone int `yaml:"test_tone"`
}

// GPIOBackend selects the GPIO implementation.
type GPIOBackend string

// GPIO backends.
const (
	// GPIOAuto uses GPIOChip when /dev/gpiochip* exists and GPIOSim otherwise.
	GPIOAuto GPIOBackend = "auto"
	GPIOChip GPIOBackend = "chip"
	GPIOSim  GPIOBackend = "sim"
)

// GPIOBackends lists every accepted gpio.backend.
func GPIOBackends() []GPIOBackend { return []GPIOBackend{GPIOAuto, GPIOChip, GPIOSim} }

// GPIO configures buttons, LEDs, the door relay and the bell.
type GPIO struct {
	Backend GPIOBackend `yaml:"backend"`
	Buttons []Button    `yaml:"buttons"`
	LEDs    []LED       `yaml:"leds"`
	// Relay drives the door opener; a Relay without a line is absent.
	Relay Relay `yaml:"relay"`
	// Bell drives an external bell, pulsed on each doorbell press; a Bell
	// without a line is absent.
	Bell Bell `yaml:"bell"`
}

// LineSpec names a GPIO line either by its name (Line, found with
// gpiocdev.FindLine) or by Chip and Offset, never both.
type LineSpec struct {
	// Line is the line name, e.g. GPIO17.
	Line string `yaml:"line"`
	// Chip is a chip name such as gpiochip0 (or its /dev path).
	Chip string `yaml:"chip"`
	// Offset on Chip; -1 (the default) when Line is used.
	Offset int `yaml:"offset"`
	// ActiveLow inverts the line: logical on is electrical low.
	ActiveLow bool `yaml:"active_low"`
}

// Configured reports whether the spec names a line at all.
func (l LineSpec) Configured() bool { return l.Line != "" || l.Chip != "" }

// ID returns the line name, or chip:offset; "" when not configured. Two
// specs with the same ID name the same line.
func (l LineSpec) ID() string {
	if l.Line != "" {
		return l.Line
	}
	if l.Chip != "" {
		return fmt.Sprintf("%s:%d", l.Chip, l.Offset)
	}
	return ""
}

// Bias is the pull resistor setting of an input line.
type Bias string

// Bias settings.
const (
	BiasAsIs     Bias = "as-is"
	BiasDisabled Bias = "disabled"
	BiasPullUp   Bias = "pull-up"
	BiasPullDown Bias = "pull-down"
)

// Biases lists every accepted bias of a button.
func Biases() []Bias { return []Bias{BiasAsIs, BiasDisabled, BiasPullUp, BiasPullDown} }

// Button is a push button input.
type Button struct {
	// Name identifies the button in logs. Every button does the same: a
	// press rings the doorbell when idle, answers when ringing, hangs up
	// during a call; a long press rejects a ringing call.
	Name     string `yaml:"name"`
	LineSpec `yaml:",inline"`
	Bias     Bias `yaml:"bias"`
	// Debounce is the kernel debounce period; 0 disables it.
	Debounce time.Duration `yaml:"debounce"`
	// LongPress is how long a press must last to count as a long press.
	LongPress time.Duration `yaml:"long_press"`
}

// LED is an indicator output.
type LED struct {
	Name     string `yaml:"name"`
	LineSpec `yaml:",inline"`
}

// Relay is the door opener output.
type Relay struct {
	LineSpec `yaml:",inline"`
	// Pulse is how long the door is released by one open command.
	Pulse time.Duration `yaml:"pulse"`
	// Max bounds any single release, whatever asks for it; at most 30s.
	Max time.Duration `yaml:"max"`
}

// Bell is an external bell output.
type Bell struct {
	LineSpec `yaml:",inline"`
	// Pulse is how long the bell rings on each doorbell press (a press of a
	// button while idle, which places the call).
	Pulse time.Duration `yaml:"pulse"`
}

// File returns the path or name the configuration was parsed from, or ""
// when it was built by Default or in code.
func (c *Config) File() string {
	if c.src == nil {
		return ""
	}
	return c.src.file
}

// Callers returns who may call the device, sorted and never nil:
// calling.callers when given, otherwise every user of signaling.directory
// and of every group in signaling.groups, the door users and the doorbell
// users. The device's own user is never listed. Anyone else signed in with
// a token (a guest, a stolen or leaked token) is refused: an invitation
// would ring the door, and a visitor's press could otherwise answer it.
func (c *Config) Callers() []string {
	users := slices.Clone(c.Calling.Callers)
	if len(users) == 0 {
		for _, e := range c.Signaling.Directory {
			users = append(users, e.User)
		}
		for _, members := range c.Signaling.Groups {
			users = append(users, members...)
		}
		users = append(users, c.Calling.DoorUsers...)
		users = append(users, c.Calling.Doorbell.Users...)
	}
	users = slices.DeleteFunc(users, func(u string) bool { return u == c.Device.User })
	slices.Sort(users)
	return append([]string{}, slices.Compact(users)...)
}

// TokenKeyFile is where the daemon keeps the embedded broker's token secret
// when signaling.embedded.token_secret is not set.
func (c *Config) TokenKeyFile() string {
	return c.Device.StateDir + "/token.key"
}

// Default returns the configuration used when no file exists. It is valid.
func Default() *Config {
	c := &Config{Version: Version}
	applyDefaults(c, func(string) bool { return false })
	return c
}

// applyDefaults fills every key for which set reports false with its default
// value. set receives key paths as written in errors, e.g.
// "gpio.buttons[0].debounce". This is the one place defaults live.
func applyDefaults(c *Config, set func(path string) bool) {
	def := func(path string, apply func()) {
		if !set(path) {
			apply()
		}
	}

	def("device.user", func() { c.Device.User = "door" })
	def("device.name", func() { c.Device.Name = "Front door" })
	def("device.state_dir", func() { c.Device.StateDir = DefaultStateDir })

	def("homeassistant.discovery_prefix", func() { c.HomeAssistant.DiscoveryPrefix = "homeassistant" })
	def("whep.max_viewers", func() { c.WHEP.MaxViewers = 2 })

	def("visitor_log.enabled", func() { c.VisitorLog.Enabled = true })
	def("visitor_log.max_entries", func() { c.VisitorLog.MaxEntries = 200 })
	def("visitor_log.max_bytes", func() { c.VisitorLog.MaxBytes = 32 << 20 })
	def("visitor_log.voice_message.max_duration", func() { c.VisitorLog.VoiceMessage.MaxDuration = 20 * time.Second })
	def("visitor_log.voice_message.silence", func() { c.VisitorLog.VoiceMessage.Silence = 4 * time.Second })

	def("log.level", func() { c.Log.Level = LogInfo })
	def("log.format", func() { c.Log.Format = LogFormatAuto })

	s := &c.Signaling
	def("signaling.topic_prefix", func() { s.TopicPrefix = "intercomd" })
	def("signaling.broker", func() { s.Broker = BrokerEmbedded })
	def("signaling.embedded.listen", func() { s.Embedded.Listen = ":1883" })
	def("signaling.embedded.max_connections_per_user", func() { s.Embedded.MaxConnectionsPerUser = 8 })
	if !set("signaling.external.web_url") && hasScheme(s.External.URL, "ws", "wss") {
		s.External.WebURL = s.External.URL
	}
	def("signaling.groups", func() { s.Groups = map[string][]string{"residents": nil} })
	for i := range s.Directory {
		e := &s.Directory[i]
		def(fmt.Sprintf("signaling.directory[%d].name", i), func() { e.Name = e.User })
	}

	def("calling.invite_timeout", func() { c.Calling.InviteTimeout = 30 * time.Second })
	def("calling.multi_device", func() { c.Calling.MultiDevice = true })
	if !set("calling.doorbell.group") && !set("calling.doorbell.users") {
		c.Calling.Doorbell.Group = "residents"
	}

	def("http.listen", func() { c.HTTP.Listen = ":8443" })
	def("http.max_connections", func() { c.HTTP.MaxConnections = DefaultMaxConnections })

	def("media.ice_restart_timeout", func() { c.Media.ICERestartTimeout = 20 * time.Second })
	def("media.video", func() { c.Media.Video = true })

	def("camera.devices", func() {
		c.Camera.Devices = []CameraDevice{{Device: "/dev/video0"}}
	})
	for i := range c.Camera.Devices {
		d := &c.Camera.Devices[i]
		p := fmt.Sprintf("camera.devices[%d]", i)
		def(p+".name", func() { d.Name = fmt.Sprintf("camera%d", i) })
		def(p+".width", func() { d.Width = 640 })
		def(p+".height", func() { d.Height = 480 })
		def(p+".fps", func() { d.FPS = 30 })
	}
	def("camera.fallback_test_pattern", func() { c.Camera.FallbackTestPattern = true })
	def("camera.bitrate", func() { c.Camera.Bitrate = 1_000_000 })
	def("camera.keyframe_interval", func() { c.Camera.KeyframeInterval = 2 * time.Second })
	def("camera.encoder", func() { c.Camera.Encoder = "auto" })

	def("audio.backend", func() { c.Audio.Backend = AudioAuto })
	def("audio.volume", func() { c.Audio.Volume = 100 })
	def("audio.mic_bitrate", func() { c.Audio.MicBitrate = 32_000 })
	def("audio.mic_complexity", func() { c.Audio.MicComplexity = 5 })
	def("audio.echo_cancel", func() { c.Audio.EchoCancel = true })
	def("audio.echo_tail", func() { c.Audio.EchoTail = 200 * time.Millisecond })
	def("audio.ringtone", func() { c.Audio.Ringtone = true })

	g := &c.GPIO
	def("gpio.backend", func() { g.Backend = GPIOAuto })
	def("gpio.buttons", func() { g.Buttons = []Button{{Name: "call", LineSpec: LineSpec{Line: "GPIO17"}}} })
	for i := range g.Buttons {
		b := &g.Buttons[i]
		p := fmt.Sprintf("gpio.buttons[%d]", i)
		defaultLine(p, &b.LineSpec, set, true)
		def(p+".bias", func() { b.Bias = BiasPullUp })
		def(p+".debounce", func() { b.Debounce = 20 * time.Millisecond })
		def(p+".long_press", func() { b.LongPress = 1500 * time.Millisecond })
	}
	def("gpio.leds", func() { g.LEDs = []LED{{Name: "status", LineSpec: LineSpec{Line: "GPIO27"}}} })
	for i := range g.LEDs {
		defaultLine(fmt.Sprintf("gpio.leds[%d]", i), &g.LEDs[i].LineSpec, set, false)
	}
	if !set("gpio.relay.line") && !set("gpio.relay.chip") {
		g.Relay.Line = "GPIO22"
	}
	defaultLine("gpio.relay", &g.Relay.LineSpec, set, false)
	def("gpio.relay.pulse", func() { g.Relay.Pulse = 3 * time.Second })
	def("gpio.relay.max", func() { g.Relay.Max = 30 * time.Second })
	defaultLine("gpio.bell", &g.Bell.LineSpec, set, false)
	def("gpio.bell.pulse", func() { g.Bell.Pulse = time.Second })
}

// defaultLine applies the defaults of a LineSpec at path p. Buttons are
// active low by default (a button to ground with the pull-up enabled).
func defaultLine(p string, l *LineSpec, set func(string) bool, activeLow bool) {
	if !set(p + ".offset") {
		l.Offset = -1
	}
	if !set(p + ".active_low") {
		l.ActiveLow = activeLow
	}
}

// Load reads and parses the configuration file at path. An empty path means
// DefaultPath, and then a missing file is not an error: Load returns Default()
// (a zero-configuration first run). A missing file named explicitly is an
// error wrapping fs.ErrNotExist.
func Load(path string) (*Config, error) { return LoadWith(path, LoadOptions{}) }

// LoadOptions changes how LoadWith reads a configuration.
type LoadOptions struct {
	// DeferCredentials leaves a systemd credential unread when
	// $CREDENTIALS_DIRECTORY is unset (outside systemd) instead of failing;
	// UnresolvedCredentials lists them. Its secret reveals "": for checking a
	// configuration, never for running with it.
	DeferCredentials bool
}

// LoadWith is Load with options.
func LoadWith(path string, o LoadOptions) (*Config, error) {
	if path == "" {
		return load(DefaultPath, false, o)
	}
	return load(path, true, o)
}

// UnresolvedCredentials lists the systemd credentials left unread under
// LoadOptions.DeferCredentials, in file order.
func (c *Config) UnresolvedCredentials() []string {
	if c.src == nil {
		return nil
	}
	return c.src.unresolved
}

// load reads path; a missing file is an error only when explicit.
func load(path string, explicit bool, o LoadOptions) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load config: read %s: %w", path, err)
	}
	return parse(path, data, o)
}

// Parse decodes, completes with defaults and validates the YAML document
// data. name is the file name used in error messages and to resolve relative
// secret file paths; it should be the file's path. Secret files and systemd
// credentials ($CREDENTIALS_DIRECTORY) are read here.
func Parse(name string, data []byte) (*Config, error) { return parse(name, data, LoadOptions{}) }

func parse(name string, data []byte, o LoadOptions) (*Config, error) {
	if name == "" {
		name = "<config>"
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}
	}
	c, err := decode(name, data, os.Getenv, o)
	if err != nil {
		return nil, err
	}
	applyDefaults(c, c.src.has)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
