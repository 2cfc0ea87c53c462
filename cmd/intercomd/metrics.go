package main

import (
	"cmp"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/endpoint"
	"github.com/intercomd/intercomd/hw/gpio"
	"github.com/intercomd/intercomd/media"
)

// metrics is what the daemon exports at /metrics (http.metrics) in the
// Prometheus text format: counters the daemon's loop increments, and at
// each scrape the door relay's pulses, the call state, the signaling link,
// the call quality of every peer, the audio engine's glitches, the running
// video encoders and the WHEP viewers, then the process's own figures (CPU,
// memory, Go runtime). No label carries a call ID or a user name: whoever
// reaches /metrics learns how the device is doing, not who calls whom.
type metrics struct {
	set  *vm.Set
	door atomic.Pointer[gpio.Relay]
	ep   atomic.Pointer[endpoint.Endpoint]
	link atomic.Bool
	dv   atomic.Pointer[devices]
}

func newMetrics() *metrics {
	m := &metrics{set: vm.NewSet()}
	m.set.RegisterMetricsWriter(m.write)
	return m
}

// handler serves the metrics.
func (m *metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.set.WritePrometheus(w)
		vm.WriteProcessMetrics(w)
	})
}

// event counts the end of a call, by its reason.
func (m *metrics) event(ev calling.Event) {
	if e, ok := ev.(calling.CallEnd); ok {
		m.set.GetOrCreateCounter(series("intercomd_calls_total", "reason", e.Reason.String())).Inc()
	}
}

// series names one labelled series: name{k1="v1",...}.
func series(name string, kv ...string) string {
	s := name + "{"
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			s += ","
		}
		s += kv[i] + "=" + strconv.Quote(kv[i+1])
	}
	return s + "}"
}

// write adds what is read at scrape time.
func (m *metrics) write(w io.Writer) {
	st := calling.Idle
	if ep := m.ep.Load(); ep != nil {
		st = ep.State()
	}
	for _, s := range []calling.State{calling.Idle, calling.Dialing, calling.Ringing, calling.InCall} {
		vm.WriteGaugeFloat64(w, series("intercomd_call_state", "state", s.String()), b2f(s == st))
	}
	vm.WriteGaugeFloat64(w, "intercomd_signaling_connected", b2f(m.link.Load()))
	// Pulses driven, not requests: requests during a pulse only extend it.
	vm.WriteCounterUint64(w, "intercomd_door_openings_total", m.door.Load().Pulses())
	dv := m.dv.Load()
	if dv == nil {
		return
	}
	if dv.media != nil {
		stats := dv.media.Stats()
		slices.SortFunc(stats, func(a, b media.PeerStats) int {
			return cmp.Or(strings.Compare(a.Call, b.Call), strings.Compare(a.User, b.User))
		})
		for i, p := range stats {
			// The peer's place among those of the calls under way.
			peer := func(name string, kv ...string) string {
				return series(name, append([]string{"peer", strconv.Itoa(i + 1)}, kv...)...)
			}
			vm.WriteGaugeFloat64(w, peer("intercomd_peer_round_trip_seconds"), p.RTT.Seconds())
			vm.WriteGaugeFloat64(w, peer("intercomd_peer_fraction_lost"), p.FractionLost)
			vm.WriteCounterUint64(w, peer("intercomd_peer_packets_lost_total"), uint64(max(p.PacketsLost, 0)))
			vm.WriteGaugeFloat64(w, peer("intercomd_peer_jitter_seconds"), p.Jitter.Seconds())
			vm.WriteGaugeFloat64(w, peer("intercomd_peer_bitrate_bits_per_second", "direction", "send"), p.SendBitrate)
			vm.WriteGaugeFloat64(w, peer("intercomd_peer_bitrate_bits_per_second", "direction", "receive"), p.RecvBitrate)
		}
	}
	if dv.audio != nil {
		s := dv.audio.Stats()
		for _, g := range []struct {
			kind string
			n    int64
		}{{"underrun", s.Underruns}, {"overrun", s.Overruns}, {"skipped", s.Skipped}} {
			vm.WriteCounterUint64(w, series("intercomd_audio_glitches_total", "kind", g.kind), uint64(g.n))
		}
		vm.WriteCounterUint64(w, "intercomd_audio_frames_total", uint64(s.Frames))
	}
	if dv.cam != nil {
		vm.WriteGaugeFloat64(w, "intercomd_video_encoders", float64(dv.cam.EncodersRunning()))
		vm.WriteGaugeFloat64(w, "intercomd_vp8_encoders", float64(dv.cam.VP8().EncodersRunning()))
	}
	if dv.whep != nil {
		vm.WriteGaugeFloat64(w, "intercomd_whep_viewers", float64(dv.whep.Viewers()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
