package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userIDPattern is the form of user, device and group IDs.
var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidUserID reports whether id is a valid user, device or group ID.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// Limits checked by Validate.
const (
	MinInviteTimeout = 5 * time.Second
	MaxInviteTimeout = 300 * time.Second
	MaxRelayPulse    = 30 * time.Second
	MinLongPress     = 200 * time.Millisecond
	MaxLongPress     = 10 * time.Second
	MaxDebounce      = time.Second
	MaxBellPulse     = 10 * time.Second
	MaxVideoWidth    = 4096
	MaxVideoHeight   = 4096
	MaxFPS           = 120
)

// Validate checks every rule of the schema and returns all violations
// joined, ordered by line, each an *Error naming the key path and, for a
// parsed Config, the file and line. It does not touch the file system or
// the network.
func (c *Config) Validate() error {
	v := &validator{src: c.src}
	v.validate(c)
	return joinSorted(v.errs)
}

type validator struct {
	src  *source
	errs []*Error
}

func (v *validator) errorf(path, format string, args ...any) {
	file := ""
	if v.src != nil {
		file = v.src.file
	}
	v.errs = append(v.errs, &Error{File: file, Line: v.src.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) validate(c *Config) {
	if c.Version != Version {
		if c.Version == 0 {
			v.errorf("version", "required; the supported version is %d", Version)
		} else {
			v.errorf("version", "unsupported version %d; the supported version is %d", c.Version, Version)
		}
	}

	v.userID("device.user", c.Device.User)
	if c.Device.Name == "" || len(c.Device.Name) > 128 {
		v.errorf("device.name", "must be 1 to 128 bytes")
	}
	v.absPath("device.state_dir", c.Device.StateDir, true)

	v.oneOf("log.level", string(c.Log.Level), LogDebug, LogInfo, LogWarn, LogError)
	v.oneOf("log.format", string(c.Log.Format), LogFormatAuto, LogFormatText, LogFormatJSON)

	v.signaling(&c.Signaling)
	v.homeAssistant(&c.HomeAssistant)
	v.whep(&c.WHEP)
	v.intRange("visitor_log.max_entries", c.VisitorLog.MaxEntries, 1, 100_000)
	if n := c.VisitorLog.MaxBytes; n < 1<<20 || n > 1<<40 {
		v.errorf("visitor_log.max_bytes", "must be from 1048576 (1 MiB: a few pictures) to 1099511627776 (1 TiB), got %d", n)
	}
	v.voiceMessage(&c.VisitorLog)
	v.calling(c)

	v.listen("http.listen", c.HTTP.Listen, false)
	v.intRange("http.max_connections", c.HTTP.MaxConnections, 8, 4096)
	v.push(&c.Push)
	v.certPair("http", c.HTTP.CertFile, c.HTTP.KeyFile)

	v.media(&c.Media)
	v.camera(c)

	a := &c.Audio
	oneOf(v, "audio.backend", a.Backend, AudioBackends())
	v.intRange("audio.volume", a.Volume, 0, 100)
	v.intRange("audio.mic_bitrate", a.MicBitrate, 6_000, 510_000)
	v.intRange("audio.mic_complexity", a.MicComplexity, 1, 10)
	if a.EchoTail < 20*time.Millisecond || a.EchoTail > time.Second {
		v.errorf("audio.echo_tail", "must be between 20ms and 1s")
	}
	if a.EchoDelay < 0 || a.EchoDelay > time.Second {
		v.errorf("audio.echo_delay", "must be between 0s and 1s")
	}
	if a.TestTone != 0 {
		v.intRange("audio.test_tone", a.TestTone, 50, 8_000)
	}

	v.gpio(&c.GPIO)
}

func (v *validator) signaling(s *Signaling) {
	if p := s.TopicPrefix; p == "" || strings.ContainsAny(p, "+#\x00") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.HasPrefix(p, "$") {
		v.errorf("signaling.topic_prefix", "must be a non-empty MQTT topic without wildcards, leading $ or leading/trailing /")
	}
	v.oneOf("signaling.broker", string(s.Broker), BrokerEmbedded, BrokerExternal)
	v.listen("signaling.embedded.listen", s.Embedded.Listen, true)
	v.intRange("signaling.embedded.max_connections_per_user", s.Embedded.MaxConnectionsPerUser, 1, 1024)

	e := &s.External
	if s.Broker == BrokerExternal {
		switch {
		case e.URL == "":
			v.errorf("signaling.external.url", "required when signaling.broker is external")
		case !hasScheme(e.URL, "tcp", "ssl", "ws", "wss"):
			v.errorf("signaling.external.url", "must be a tcp://, ssl://, ws:// or wss:// URL with a host, got %q", e.URL)
		}
		if e.WebURL == "" && e.URL != "" {
			v.errorf("signaling.external.web_url", "required when signaling.external.url is not ws:// or wss:// (phones speak MQTT over WebSocket only)")
		}
	} else if e.URL != "" && !hasScheme(e.URL, "tcp", "ssl", "ws", "wss") {
		v.errorf("signaling.external.url", "must be a tcp://, ssl://, ws:// or wss:// URL with a host, got %q", e.URL)
	}
	if e.WebURL != "" && !hasScheme(e.WebURL, "ws", "wss") {
		v.errorf("signaling.external.web_url", "must be a ws:// or wss:// URL with a host, got %q", e.WebURL)
	}
	if e.Password.IsSet() && e.Username == "" {
		v.errorf("signaling.external.password", "given without signaling.external.username")
	}
	v.certPair("signaling.external", e.CertFile, e.KeyFile)

	for _, name := range sortedKeys(s.Groups) {
		p := "signaling.groups." + name
		if !ValidUserID(name) {
			v.errorf(p, "group name must match %s", userIDPattern)
		}
		v.userIDs(p, s.Groups[name])
	}
	seen := map[string]int{}
	for i, e := range s.Directory {
		p := fmt.Sprintf("signaling.directory[%d]", i)
		v.userID(p+".user", e.User)
		if first, dup := seen[e.User]; dup && e.User != "" {
			v.errorf(p+".user", "%q is already listed at signaling.directory[%d]", e.User, first)
		}
		seen[e.User] = i
	}
}

func (v *validator) calling(c *Config) {
	k := &c.Calling
	if k.InviteTimeout < MinInviteTimeout || k.InviteTimeout > MaxInviteTimeout {
		v.errorf("calling.invite_timeout", "must be between %s and %s", MinInviteTimeout, MaxInviteTimeout)
	}
	db := &k.Doorbell
	switch {
	case db.Group != "" && len(db.Users) > 0:
		v.errorf("calling.doorbell", "give group or users, not both")
	case db.Group == "" && len(db.Users) == 0:
		v.errorf("calling.doorbell", "give a group or a list of users to ring")
	case db.Group != "":
		if _, ok := c.Signaling.Groups[db.Group]; !ok {
			v.errorf("calling.doorbell.group", "group %q is not defined in signaling.groups", db.Group)
		}
	default:
		v.userIDs("calling.doorbell.users", db.Users)
	}
	v.userIDs("calling.door_users", k.DoorUsers)
	v.userIDs("calling.callers", k.Callers)
}

func (v *validator) media(m *Media) {
	for i, u := range m.STUNServers {
		if !hasOpaqueScheme(u, "stun", "stuns") {
			v.errorf(fmt.Sprintf("media.stun_servers[%d]", i), "must be a stun: or stuns: URL with a host, got %q", u)
		}
	}
	for i, t := range m.TURNServers {
		p := fmt.Sprintf("media.turn_servers[%d]", i)
		if !hasOpaqueScheme(t.URL, "turn", "turns") {
			v.errorf(p+".url", "must be a turn: or turns: URL with a host, got %q", t.URL)
		}
		if (t.Username == "") != !t.Credential.IsSet() {
			v.errorf(p, "give both username and credential, or neither")
		}
	}
	v.intRange("media.udp_port", m.UDPPort, 0, 65535)
	if m.ICERestartTimeout < time.Second || m.ICERestartTimeout > 5*time.Minute {
		v.errorf("media.ice_restart_timeout", "must be between 1s and 5m0s")
	}
}

func (v *validator) camera(c *Config) {
	cam := &c.Camera
	names := map[string]int{}
	for i, d := range cam.Devices {
		p := fmt.Sprintf("camera.devices[%d]", i)
		if d.Name == "" {
			v.errorf(p+".name", "required")
		} else if first, dup := names[d.Name]; dup {
			v.errorf(p+".name", "%q is already used by camera.devices[%d]", d.Name, first)
		} else {
			names[d.Name] = i
		}
		switch {
		case len(d.Command) > 0:
			if d.Command[0] == "" {
				v.errorf(p+".command", "the program must not be empty")
			}
		case d.Device != TestPatternDevice && d.Device != RpicamDevice:
			v.absPath(p+".device", d.Device, true)
		}
		v.intRange(p+".width", d.Width, 16, MaxVideoWidth)
		v.intRange(p+".height", d.Height, 16, MaxVideoHeight)
		if d.Width%2 != 0 || d.Height%2 != 0 {
			v.errorf(p, "width and height must be even (4:2:0 video)")
		}
		v.intRange(p+".fps", d.FPS, 1, MaxFPS)
		oneOf(v, p+".format", d.Format, CameraFormats())
		if d.PatternNoise != 0 && d.Device != TestPatternDevice {
			v.errorf(p+".pattern_noise", "only for device %s", TestPatternDevice)
		} else {
			v.intRange(p+".pattern_noise", d.PatternNoise, 0, 12)
		}
	}
	if c.Media.Video && len(cam.Devices) == 0 && !cam.FallbackTestPattern {
		v.errorf("camera.devices", "no video source: list a device, enable fallback_test_pattern, or set media.video: false")
	}
	v.intRange("camera.bitrate", cam.Bitrate, 50_000, 20_000_000)
	if cam.KeyframeInterval < 100*time.Millisecond || cam.KeyframeInterval > time.Minute {
		v.errorf("camera.keyframe_interval", "must be between 100ms and 1m0s")
	}
	oneOf(v, "camera.encoder", cam.Encoder, CameraEncoders())
	if cam.EncoderDevice != "" {
		v.absPath("camera.encoder_device", cam.EncoderDevice, true)
	}
}

func (v *validator) gpio(g *GPIO) {
	oneOf(v, "gpio.backend", g.Backend, GPIOBackends())

	lines := map[string]string{} // line key -> path of first user
	useLine := func(p string, l LineSpec) {
		key := l.ID()
		if key == "" {
			return
		}
		if first, dup := lines[key]; dup {
			v.errorf(p, "line %s is already used by %s", key, first)
			return
		}
		lines[key] = p
	}

	names := map[string]int{}
	for i, b := range g.Buttons {
		p := fmt.Sprintf("gpio.buttons[%d]", i)
		v.ioName(p, b.Name, names, i, "gpio.buttons")
		if v.line(p, b.LineSpec, true) {
			useLine(p, b.LineSpec)
		}
		oneOf(v, p+".bias", b.Bias, Biases())
		if b.Debounce < 0 || b.Debounce > MaxDebounce {
			v.errorf(p+".debounce", "must be between 0s and %s", MaxDebounce)
		}
		if b.LongPress < MinLongPress || b.LongPress > MaxLongPress {
			v.errorf(p+".long_press", "must be between %s and %s", MinLongPress, MaxLongPress)
		}
	}
	names = map[string]int{}
	for i, l := range g.LEDs {
		p := fmt.Sprintf("gpio.leds[%d]", i)
		v.ioName(p, l.Name, names, i, "gpio.leds")
		if v.line(p, l.LineSpec, true) {
			useLine(p, l.LineSpec)
		}
	}

	r := &g.Relay
	if v.line("gpio.relay", r.LineSpec, false) && r.Configured() {
		useLine("gpio.relay", r.LineSpec)
		if r.Pulse <= 0 {
			v.errorf("gpio.relay.pulse", "must be greater than 0s")
		} else if r.Pulse > r.Max {
			v.errorf("gpio.relay.pulse", "must not exceed gpio.relay.max (%s)", r.Max)
		}
		if r.Max <= 0 || r.Max > MaxRelayPulse {
			v.errorf("gpio.relay.max", "must be greater than 0s and at most %s", MaxRelayPulse)
		}
	}
	b := &g.Bell
	if v.line("gpio.bell", b.LineSpec, false) && b.Configured() {
		useLine("gpio.bell", b.LineSpec)
		if b.Pulse <= 0 || b.Pulse > MaxBellPulse {
			v.errorf("gpio.bell.pulse", "must be greater than 0s and at most %s", MaxBellPulse)
		}
	}
}

// ioName checks the name of a button or LED: an ID, unique within its list.
func (v *validator) ioName(p, name string, names map[string]int, i int, list string) {
	switch first, dup := names[name]; {
	case !ValidUserID(name):
		v.errorf(p+".name", "must match %s", userIDPattern)
	case dup:
		v.errorf(p+".name", "%q is already used by %s[%d]", name, list, first)
	default:
		names[name] = i
	}
}

// line checks a LineSpec: a line name or chip+offset, not both; neither is
// allowed only when the output is optional. It reports whether the spec is
// well-formed.
func (v *validator) line(p string, l LineSpec, required bool) bool {
	switch {
	case l.Line != "" && l.Chip != "":
		v.errorf(p, "give line or chip+offset, not both")
	case l.Line != "" && l.Offset != -1:
		v.errorf(p+".offset", "only meaningful with chip; remove it when line is given")
	case l.Chip != "" && l.Offset < 0:
		v.errorf(p+".offset", "required with chip and must be 0 or more")
	case l.Chip == "" && l.Line == "" && l.Offset != -1:
		v.errorf(p+".offset", "given without chip")
	case !l.Configured() && required:
		v.errorf(p, "give line (a line name such as GPIO17) or chip and offset")
	case l.Chip != "" && !validChip(l.Chip):
		v.errorf(p+".chip", "must be a chip name such as gpiochip0 or /dev/gpiochip0, got %q", l.Chip)
	default:
		return true
	}
	return false
}

func validChip(c string) bool {
	name := strings.TrimPrefix(c, "/dev/")
	return name != "" && !strings.ContainsAny(name, "/\x00 ")
}

func (v *validator) userID(p, id string) {
	if !ValidUserID(id) {
		v.errorf(p, "%q is not a valid user ID (must match %s)", id, userIDPattern)
	}
}

func (v *validator) userIDs(p string, ids []string) {
	seen := map[string]bool{}
	for i, id := range ids {
		ep := fmt.Sprintf("%s[%d]", p, i)
		v.userID(ep, id)
		if seen[id] {
			v.errorf(ep, "%q is listed twice", id)
		}
		seen[id] = true
	}
}

func (v *validator) absPath(p, path string, required bool) {
	switch {
	case path == "" && required:
		v.errorf(p, "required")
	case path != "" && (!filepath.IsAbs(path) || strings.ContainsRune(path, 0)):
		v.errorf(p, "must be an absolute path, got %q", path)
	}
}

func (v *validator) certPair(p, cert, key string) {
	if (cert == "") != (key == "") {
		v.errorf(p, "give both cert_file and key_file, or neither")
	}
}

func (v *validator) intRange(p string, n, lo, hi int) {
	if n < lo || n > hi {
		v.errorf(p, "must be between %d and %d, got %d", lo, hi, n)
	}
}

// oneOf checks that val is one of the allowed values of its type.
func oneOf[T ~string](v *validator, p string, val T, allowed []T) {
	names := make([]any, len(allowed))
	for i, a := range allowed {
		names[i] = a
	}
	v.oneOf(p, string(val), names...)
}

func (v *validator) oneOf(p, val string, allowed ...any) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = fmt.Sprint(a)
	}
	if slices.Contains(names, val) {
		return
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	v.errorf(p, "must be one of %s, got %q", strings.Join(quoted, ", "), val)
}

// listen checks a host:port listen address; empty is allowed only when
// optional.
func (v *validator) listen(p, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.errorf(p, "required")
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(p, "must be host:port or :port, got %q", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errorf(p, "port must be a number from 0 to 65535, got %q", port)
		return
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		v.errorf(p, "host must be an IP address or a host name, got %q", host)
	}
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// hasScheme reports whether s is a URL with a host and one of the schemes.
func hasScheme(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && u.Hostname() != "" && slices.Contains(schemes, u.Scheme)
}

// hasOpaqueScheme reports whether s is a scheme:host[:port][?query] URL such
// as stun:stun.example.org:3478 or turn:host:3478?transport=udp.
func hasOpaqueScheme(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.Opaque == "" {
		return false
	}
	host := u.Opaque
	if h, port, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
		host = h
	}
	return net.ParseIP(host) != nil || validHostname(host)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (v *validator) push(p *Push) {
	if c := p.Contact; c != "" {
		switch {
		case hasScheme(c, "https"):
		case strings.HasPrefix(c, "mailto:"):
			_, host, ok := strings.Cut(c, "@")
			if !ok || host == "" || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".local") {
				v.errorf("push.contact", "must be a reachable address (mailto:owner@example.org): push services refuse localhost and .local")
			}
		default:
			v.errorf("push.contact", "must be a mailto: or https: URL")
		}
	}
	if p.AppURL != "" && !hasScheme(p.AppURL, "https", "http") {
		v.errorf("push.app_url", "must be an https: URL")
	}
	for i, n := range p.Ntfy {
		pre := fmt.Sprintf("push.ntfy[%d]", i)
		v.userID(pre+".user", n.User)
		if !hasScheme(n.Server, "https", "http") {
			v.errorf(pre+".server", "must be an http: or https: URL such as https://ntfy.sh")
		}
		if !userIDPattern.MatchString(n.Topic) {
			v.errorf(pre+".topic", "must be 1 to 64 letters, digits, - or _")
		}
	}
}

// Limits of visitor_log.voice_message.
const (
	MaxVoiceMessage = 2 * time.Minute
	MaxSilence      = time.Minute
)

func (v *validator) voiceMessage(l *VisitorLog) {
	const p = "visitor_log.voice_message."
	m := &l.VoiceMessage
	if m.Enabled && !l.Enabled {
		v.errorf(p+"enabled", "needs visitor_log.enabled: the message goes in the ring's entry")
	}
	v.absPath(p+"greeting", m.Greeting, false)
	if m.MaxDuration < time.Second || m.MaxDuration > MaxVoiceMessage {
		v.errorf(p+"max_duration", "must be between 1s and %s", MaxVoiceMessage)
	}
	if m.Silence != 0 && (m.Silence < time.Second || m.Silence > MaxSilence) {
		v.errorf(p+"silence", "must be 0s (off) or between 1s and %s", MaxSilence)
	}
}

func (v *validator) whep(w *WHEP) {
	if w.Enabled && len(w.Users) == 0 {
		v.errorf("whep.users", "required when whep.enabled is true: the users whose tokens may watch")
	}
	v.userIDs("whep.users", w.Users)
	v.intRange("whep.max_viewers", w.MaxViewers, 1, 16)
}

func (v *validator) homeAssistant(h *HomeAssistant) {
	if h.Enabled && h.Broker == "" {
		v.errorf("homeassistant.broker", "required when homeassistant.enabled is true")
	}
	if h.Broker != "" && !hasScheme(h.Broker, "tcp", "ssl", "ws", "wss") {
		v.errorf("homeassistant.broker", "must be a tcp://, ssl://, ws:// or wss:// URL")
	}
	if h.DiscoveryPrefix == "" || strings.ContainsAny(h.DiscoveryPrefix, "#+") {
		v.errorf("homeassistant.discovery_prefix", "must be a non-empty topic without wildcards")
	}
	if h.NodeID != "" && !userIDPattern.MatchString(h.NodeID) {
		v.errorf("homeassistant.node_id", "must match %s", userIDPattern)
	}
	if h.AppURL != "" {
		if u, err := url.Parse(h.AppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			v.errorf("homeassistant.app_url", "must be an http:// or https:// URL")
		}
	}
}
