package main

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
)

// metrics is what the daemon exports at /metrics (http.metrics) in the
// Prometheus text format: counters the daemon's loop increments, and at
// each scrape the call state, the signaling link, the call quality of every
// peer, the audio engine's glitches and the running video encoders.
type metrics struct {
	reg   *prometheus.Registry
	calls *prometheus.CounterVec
	doors prometheus.Counter
	ep    atomic.Pointer[endpoint.Endpoint]
	link  atomic.Bool
	dv    atomic.Pointer[devices]
}

var (
	descState = prometheus.NewDesc("intercomd_call_state",
		"1 for the calling state the device is in.", []string{"state"}, nil)
	descLink = prometheus.NewDesc("intercomd_signaling_connected",
		"1 while the device is signed in to its MQTT broker.", nil, nil)
	descRTT = prometheus.NewDesc("intercomd_peer_round_trip_seconds",
		"Round-trip time to a party of a call, from its RTCP receiver reports.", []string{"call", "user"}, nil)
	descLost = prometheus.NewDesc("intercomd_peer_fraction_lost",
		"Share of what the device sent that a party reported lost in its last report (0..1).", []string{"call", "user"}, nil)
	descLostIn = prometheus.NewDesc("intercomd_peer_packets_lost_total",
		"Packets lost on the way from a party to the device.", []string{"call", "user"}, nil)
	descJitter = prometheus.NewDesc("intercomd_peer_jitter_seconds",
		"Largest interarrival jitter of the streams received from a party.", []string{"call", "user"}, nil)
	descBitrate = prometheus.NewDesc("intercomd_peer_bitrate_bits_per_second",
		"RTP payload bit rate to (direction=send) and from (direction=receive) a party.", []string{"call", "user", "direction"}, nil)
	descAudio = prometheus.NewDesc("intercomd_audio_glitches_total",
		"Audio device glitches: underrun (speaker starved), overrun (microphone dropped), skipped (processing fell behind).", []string{"kind"}, nil)
	descFrames = prometheus.NewDesc("intercomd_audio_frames_total",
		"20 ms audio frames the engine processed.", nil, nil)
	descEncoders = prometheus.NewDesc("intercomd_video_encoders",
		"Video encoders running: one for every viewer, or none.", nil, nil)
)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intercomd_calls_total",
			Help: "Calls ended, by reason (hangup, declined, busy, timeout, cancelled, elsewhere, media, offline, ...).",
		}, []string{"reason"}),
		doors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intercomd_door_openings_total",
			Help: "Times the door relay was pulsed on an authorised request.",
		}),
	}
	m.reg.MustRegister(m.calls, m.doors, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// event counts what an event ends.
func (m *metrics) event(ev calling.Event) {
	if e, ok := ev.(calling.CallEnd); ok {
		m.calls.WithLabelValues(e.Reason).Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descLink, descRTT, descLost, descLostIn, descJitter, descBitrate, descAudio, descFrames, descEncoders} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, reading the daemon's state now.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	st := calling.Idle
	if ep := m.ep.Load(); ep != nil {
		st = ep.State()
	}
	for _, s := range []calling.State{calling.Idle, calling.Dialing, calling.Ringing, calling.InCall} {
		gauge(descState, b2f(s == st), s.String())
	}
	gauge(descLink, b2f(m.link.Load()))
	dv := m.dv.Load()
	if dv == nil {
		return
	}
	if dv.media != nil {
		for _, p := range dv.media.Stats() {
			gauge(descRTT, p.RTT.Seconds(), p.Call, p.User)
			gauge(descLost, p.FractionLost, p.Call, p.User)
			counter(descLostIn, float64(p.PacketsLost), p.Call, p.User)
			gauge(descJitter, p.Jitter.Seconds(), p.Call, p.User)
			gauge(descBitrate, p.SendBitrate, p.Call, p.User, "send")
			gauge(descBitrate, p.RecvBitrate, p.Call, p.User, "receive")
		}
	}
	if dv.audio != nil {
		s := dv.audio.Stats()
		counter(descAudio, float64(s.Underruns), "underrun")
		counter(descAudio, float64(s.Overruns), "overrun")
		counter(descAudio, float64(s.Skipped), "skipped")
		counter(descFrames, float64(s.Frames))
	}
	if dv.cam != nil {
		gauge(descEncoders, float64(dv.cam.EncodersRunning()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
