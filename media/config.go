package media

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/hw/camera"
)

// Payload types offered for the codecs intercomd speaks.
const (
	PayloadTypeH264 webrtc.PayloadType = 102
	PayloadTypeVP8  webrtc.PayloadType = 96
	PayloadTypeOpus webrtc.PayloadType = 111
)

// Video codecs, by name in Config.VideoCodecs.
const (
	CodecH264 = "H264"
	CodecVP8  = "VP8"
)

// OpusFmtpLine is the Opus format offered: in-band FEC accepted, 10 ms minimum
// packets (the engine sends 20 ms).
const OpusFmtpLine = "minptime=10;useinbandfec=1"

// Defaults applied by WithDefaults.
const (
	DefaultICERestartTimeout = 20 * time.Second
	DefaultStatsInterval     = 5 * time.Second
	DefaultLevelInterval     = 300 * time.Millisecond
)

// Config configures the media layer. The zero value is usable: host
// candidates on every interface, ephemeral ports, video on.
type Config struct {
	// ICEServers are the STUN and TURN servers (TURN with Username and
	// Credential).
	ICEServers []webrtc.ICEServer
	// UDPPort, when not 0, carries every call's ICE traffic on this one UDP
	// port (a firewall needs one rule); 0 uses an ephemeral port per call.
	UDPPort int
	// ICERestartTimeout is how long a connection that went disconnected or
	// failed may take to come back through ICE restart before the party is
	// dropped with calling.ReasonMedia. Default 20 s.
	ICERestartTimeout time.Duration
	// ICEDisconnectedTimeout, ICEFailedTimeout and ICEKeepalive tune pion's
	// ICE agent; zero keeps pion's defaults (5 s, 25 s, 2 s).
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	ICEKeepalive           time.Duration
	// DisableVideo makes every call audio only, whatever its type.
	DisableVideo bool
	// Interfaces, when not empty, limits ICE host candidates to these
	// network interfaces.
	Interfaces []string
	// LoopbackOnly gathers 127.0.0.1 candidates only (tests): nothing leaves
	// the machine.
	LoopbackOnly bool
	// StatsInterval is how often call quality is read from RTCP stats.
	// Default 5 s.
	StatsInterval time.Duration
	// LevelInterval is how often voice levels are reported, counted in
	// encoded microphone audio. Default 300 ms.
	LevelInterval time.Duration
	// CameraFront and CameraBack name the camera sources that
	// ControlSwitchCamera selects; empty names ignore the control.
	CameraFront, CameraBack string
	// VideoCodecs are the video codecs offered and accepted, in order of
	// preference: CodecH264 and CodecVP8 (the default, both: H.264 from
	// the camera's main encoder, VP8 from its second one for a party that
	// cannot take H.264). A softphone limited to VP8 acts as a browser
	// without H.264.
	VideoCodecs []string
}

// WithDefaults returns c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.ICERestartTimeout == 0 {
		c.ICERestartTimeout = DefaultICERestartTimeout
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.LevelInterval == 0 {
		c.LevelInterval = DefaultLevelInterval
	}
	if len(c.VideoCodecs) == 0 {
		c.VideoCodecs = []string{CodecH264, CodecVP8}
	}
	c.ICEServers = slices.Clone(c.ICEServers)
	c.Interfaces = slices.Clone(c.Interfaces)
	c.VideoCodecs = slices.Clone(c.VideoCodecs)
	return c
}

// Validate reports the first invalid field, naming it and the rule.
func (c Config) Validate() error {
	switch {
	case c.UDPPort < 0 || c.UDPPort > 65535:
		return fmt.Errorf("udp_port: %d outside 0..65535", c.UDPPort)
	case c.ICERestartTimeout < 0:
		return fmt.Errorf("ice_restart_timeout: must not be negative, got %s", c.ICERestartTimeout)
	case c.ICEDisconnectedTimeout < 0 || c.ICEFailedTimeout < 0 || c.ICEKeepalive < 0:
		return errors.New("ice timeouts: must not be negative")
	case c.StatsInterval < 0 || c.LevelInterval < 0:
		return errors.New("stats_interval, level_interval: must not be negative")
	}
	for i, s := range c.ICEServers {
		if len(s.URLs) == 0 {
			return fmt.Errorf("ice_servers[%d].urls: at least one URL is required", i)
		}
	}
	for i, v := range c.VideoCodecs {
		if v != CodecH264 && v != CodecVP8 {
			return fmt.Errorf("video_codecs[%d]: %q is none of %s, %s", i, v, CodecH264, CodecVP8)
		}
		if slices.Index(c.VideoCodecs, v) != i {
			return fmt.Errorf("video_codecs[%d]: %s twice", i, v)
		}
	}
	return nil
}

// opusCapability is the audio codec every track and the media engine use:
// Opus at 48 kHz, stereo as RFC 7587 requires to be signalled.
func opusCapability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: OpusFmtpLine}
}

// buildAPI returns the pion API every PeerConnection of a Media is made
// with, and the UDP mux to close with it (nil without UDPPort). Codecs are
// registered before the interceptors, so the SDP carries nack, nack pli and
// transport-cc; H.264 before VP8, so a browser that takes both picks H.264
// (the camera's main encoder, in hardware where the board has one).
func buildAPI(c Config, n transport.Net, box *getterBox) (*webrtc.API, ice.UDPMux, error) {
	me := &webrtc.MediaEngine{}
	for _, v := range c.VideoCodecs {
		params := camera.CodecParameters(PayloadTypeH264)
		if v == CodecVP8 {
			params = camera.VP8Parameters(PayloadTypeVP8)
		}
		if err := me.RegisterCodec(params, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", v, err)
		}
	}
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability(), PayloadType: PayloadTypeOpus}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, fmt.Errorf("register opus: %w", err)
	}
	// pion's default interceptors (NACK, RTCP reports, TWCC), with a stats
	// interceptor of our own whose per-connection Getter we keep.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, nil, fmt.Errorf("register nack: %w", err)
	}
	// The stats interceptor goes before the reports so that it sees the
	// sender reports they write (round-trip times need them).
	si, err := stats.NewInterceptor()
	if err != nil {
		return nil, nil, fmt.Errorf("register stats: %w", err)
	}
	si.OnNewPeerConnection(func(_ string, g stats.Getter) { box.put(g) })
	ir.Add(si)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, nil, fmt.Errorf("register rtcp reports: %w", err)
	}
	if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
		return nil, nil, fmt.Errorf("register twcc: %w", err)
	}

	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if c.ICEDisconnectedTimeout != 0 || c.ICEFailedTimeout != 0 || c.ICEKeepalive != 0 {
		d, f, k := c.ICEDisconnectedTimeout, c.ICEFailedTimeout, c.ICEKeepalive
		if d == 0 {
			d = 5 * time.Second
		}
		if f == 0 {
			f = 25 * time.Second
		}
		if k == 0 {
			k = 2 * time.Second
		}
		se.SetICETimeouts(d, f, k)
	}
	ifFilter := interfaceFilter(c)
	var ipFilter func(net.IP) bool
	if c.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		ipFilter = func(ip net.IP) bool { return ip.IsLoopback() }
		se.SetIPFilter(ipFilter)
	}
	if ifFilter != nil {
		se.SetInterfaceFilter(ifFilter)
	}
	if n != nil {
		se.SetNet(n)
	}
	var mux ice.UDPMux
	if c.UDPPort != 0 {
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4)}
		if ifFilter != nil {
			opts = append(opts, ice.UDPMuxFromPortWithInterfaceFilter(ifFilter))
		}
		if ipFilter != nil {
			opts = append(opts, ice.UDPMuxFromPortWithIPFilter(ipFilter))
		}
		if c.LoopbackOnly {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		if n != nil {
			opts = append(opts, ice.UDPMuxFromPortWithNet(n))
		}
		m, err := ice.NewMultiUDPMuxFromPort(c.UDPPort, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("listen on udp port %d: %w", c.UDPPort, err)
		}
		se.SetICEUDPMux(m)
		mux = m
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api, mux, nil
}

func interfaceFilter(c Config) func(string) bool {
	switch {
	case c.LoopbackOnly:
		return func(name string) bool { return name == "lo" || name == "lo0" }
	case len(c.Interfaces) > 0:
		allowed := slices.Clone(c.Interfaces)
		return func(name string) bool { return slices.Contains(allowed, name) }
	}
	return nil
}
