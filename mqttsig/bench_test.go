package mqttsig_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/mqttsig"
)

// BenchmarkLatency measures publish-to-receive latency of one direct message
// on loopback: from the moment Send is called until the receiver's Inbound
// channel yields it. It reports the median and 95th percentile.
func BenchmarkLatency(b *testing.B) {
	b.Run("embedded-tcp", func(b *testing.B) {
		env := mqtttest.StartEmbedded(b, mqtttest.Options{Groups: testGroups})
		benchLatency(b, env, env.URL())
	})
	b.Run("embedded-websocket", func(b *testing.B) {
		env := mqtttest.StartEmbedded(b, mqtttest.Options{Groups: testGroups})
		benchLatency(b, env, env.WSURL())
	})
	b.Run("mosquitto-tcp", func(b *testing.B) {
		env := mqtttest.StartMosquitto(b, testUsers, testGroups)
		benchLatency(b, env, env.URL())
	})
}

func benchLatency(b *testing.B, env *mqtttest.Env, url string) {
	alice := env.Client("alice", func(o *mqttsig.Options) { o.Brokers = []string{url} })
	bob := env.Client("bob", func(o *mqttsig.Options) { o.Brokers = []string{url} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	payload := make([]byte, 1024) // about the size of an SDP offer
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := alice.Send("bob", payload); err != nil {
			b.Fatal(err)
		}
	wait:
		for {
			select {
			case in := <-bob.Inbound():
				if in.Kind == mqttsig.Direct {
					break wait
				}
			case <-ctx.Done():
				b.Fatal("message not received")
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.95), "p95-µs")
}
