package media_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/hw/audio/audiotest"
	"github.com/intercomd/intercomd/internal/mqtttest"
	"github.com/intercomd/intercomd/media"
)

// netem is a virtual network between two parties with adjustable loss and a
// switch that cuts the link.
type netem struct {
	router     *vnet.Router
	nets       []*vnet.Net
	lossPerMil atomic.Int32
	cut        atomic.Bool
	lossy      atomic.Bool // while cut, RTP packets are lost for good: retransmissions too
	lost       map[uint64]bool
	dropped    atomic.Int64
	mu         sync.Mutex
	rng        *rand.Rand
}

func newNetem(t *testing.T, delay time.Duration, ips ...string) *netem {
	t.Helper()
	r, err := vnet.NewRouter(&vnet.RouterConfig{
		CIDR: "10.9.0.0/24", MinDelay: delay, LoggerFactory: logging.NewDefaultLoggerFactory(),
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &netem{router: r, rng: rand.New(rand.NewPCG(1, 2)), lost: map[uint64]bool{}}
	r.AddChunkFilter(func(c vnet.Chunk) bool {
		key, isRTP := rtpKey(c.UserData())
		if n.cut.Load() {
			n.dropped.Add(1)
			if isRTP && n.lossy.Load() {
				n.mu.Lock()
				n.lost[key] = true
				n.mu.Unlock()
			}
			return false
		}
		if isRTP {
			n.mu.Lock()
			gone := n.lost[key]
			n.mu.Unlock()
			if gone { // a retransmission of a packet lost for good
				n.dropped.Add(1)
				return false
			}
		}
		if l := n.lossPerMil.Load(); l > 0 {
			n.mu.Lock()
			drop := n.rng.IntN(1000) < int(l)
			n.mu.Unlock()
			if drop {
				n.dropped.Add(1)
				return false
			}
		}
		return true
	})
	for _, ip := range ips {
		nw, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNet(nw); err != nil {
			t.Fatal(err)
		}
		n.nets = append(n.nets, nw)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return n
}

// rtpKey returns SSRC and sequence number of an SRTP packet (whose header
// is in clear), and false for anything else (STUN, DTLS, SRTCP).
func rtpKey(b []byte) (uint64, bool) {
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
		return 0, false
	}
	return uint64(binary.BigEndian.Uint32(b[8:12]))<<16 | uint64(binary.BigEndian.Uint16(b[2:4])), true
}

// TestLossAndDelay: 5 % loss and 50 ms delay each way. Audio plays without
// a gap over 100 ms; after a burst of loss the receiver's PLI brings a key
// frame and the picture back within 2 s (the periodic key frame interval is
// far longer, so only the PLI can).
// callAlice has dev (the door) call soft (alice, who answers at once) and
// waits until both see the other enter.
func callAlice(ctx context.Context, dev, soft *party, typ calling.CallType) {
	dev.call(ctx, typ, "alice")
	dev.wait(ctx, 0, "alice entering", isEnter("alice"))
	soft.wait(ctx, 0, "door entering", isEnter("door"))
}

// audioPair is the door and alice on the two sides of nw, without cameras.
func audioPair(t *testing.T, env *mqtttest.Env, nw *netem, cfg media.Config) (dev, soft *party) {
	dev = newParty(t, env, "door", partyOpts{tone: 440, net: nw.nets[0], cfg: cfg})
	soft = newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, net: nw.nets[1], cfg: cfg})
	return dev, soft
}

func TestLossAndDelay(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	nw := newNetem(t, 50*time.Millisecond, "10.9.0.2", "10.9.0.3")
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, width: 320, height: 240, fps: 15,
		keyFrameInterval: 100000, net: nw.nets[0], cfg: media.Config{StatsInterval: time.Second}})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, net: nw.nets[1]})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	callAlice(ctx, dev, soft, calling.Video)
	soft.hear(ctx, "door")

	nw.lossPerMil.Store(50)
	rec := soft.recorder("door")
	samples, err := rec.Wait(ctx, 48000*5)
	if err != nil {
		t.Fatal(err)
	}
	gap := time.Duration(audiotest.LongestSilence(samples, 300)) * time.Second / 48000
	t.Logf("5%% loss, 50 ms delay: longest audio gap %v over 5 s, %d packets dropped", gap, nw.dropped.Load())
	if gap > 100*time.Millisecond {
		t.Errorf("audio gap of %v under 5%% loss, want at most 100 ms", gap)
	}
	checkTone(t, "alice", "door", samples, 440)

	// A burst: everything lost for 1 s, for good (NACK cannot repair it).
	nw.lossy.Store(true)
	forced := dev.cam.Status().ForcedKeyFrames
	d0 := nw.dropped.Load()
	nw.cut.Store(true)
	time.Sleep(time.Second)
	nw.cut.Store(false)
	end := time.Now()
	t.Logf("burst: %d packets dropped", nw.dropped.Load()-d0)
	// Frames in flight before the cut may still arrive; the first frame
	// after them must be a key frame.
	var back time.Time
	var key, ok bool
	for {
		if back, key, ok = soft.firstFrameAfter("door", end.Add(150*time.Millisecond)); ok {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("video never came back after the burst")
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("video back %v after the burst (key frame %v); forced key frames %d -> %d", back.Sub(end), key, forced, dev.cam.Status().ForcedKeyFrames)
	if d := back.Sub(end); d > 2*time.Second {
		t.Errorf("video came back %v after the burst, want within 2 s", d)
	}
	if !key {
		t.Errorf("the first frame after a loss is not a key frame")
	}
	if dev.cam.Status().ForcedKeyFrames <= forced {
		t.Errorf("no key frame forced after the burst (PLI not honoured)")
	}
	if st := dev.media.Stats(); len(st) == 0 {
		t.Errorf("no call quality stats")
	} else {
		t.Logf("device stats: %+v", st[0])
	}
}

// TestLinkCut: the media path is cut for 10 s while signaling stays up.
// The call either resumes through ICE restart (audio flows again on both
// sides) or ends with a reason on both sides; it never hangs.
func TestLinkCut(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	nw := newNetem(t, 5*time.Millisecond, "10.9.0.2", "10.9.0.3")
	cfg := media.Config{ICEDisconnectedTimeout: 2 * time.Second, ICEFailedTimeout: 6 * time.Second,
		ICEKeepalive: 500 * time.Millisecond, ICERestartTimeout: 20 * time.Second, StatsInterval: time.Second}
	dev, soft := audioPair(t, env, nw, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	callAlice(ctx, dev, soft, calling.Audio)
	soft.hear(ctx, "door")

	devMark, softMark := dev.eventCount(), soft.eventCount()
	nw.cut.Store(true)
	time.Sleep(10 * time.Second)
	nw.cut.Store(false)

	// Give ICE restart its chance, then look.
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		rctx, rcancel := context.WithTimeout(ctx, 25*time.Second)
		defer rcancel()
		for rctx.Err() == nil {
			if connected(dev) && connected(soft) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	<-resumed
	if connected(dev) && connected(soft) {
		checkTone(t, "alice", "door", soft.hear(ctx, "door"), 440)
		checkTone(t, "door", "alice", dev.hear(ctx, "alice"), 880)
		if dev.ep.State() != calling.InCall || soft.ep.State() != calling.InCall {
			t.Errorf("media resumed but states are %v / %v", dev.ep.State(), soft.ep.State())
		}
		t.Logf("call resumed through ICE restart")
		return
	}
	// Otherwise both sides must have ended the call with a reason.
	i := dev.wait(ctx, devMark, "call end", isCallEnd)
	j := soft.wait(ctx, softMark, "call end", isCallEnd)
	t.Logf("call ended: door %q, alice %q", reason(dev, i), reason(soft, j))
	if reason(dev, i) == calling.ReasonUnknown || reason(soft, j) == calling.ReasonUnknown {
		t.Errorf("call ended without a reason")
	}
}

func connected(p *party) bool {
	st := p.media.Stats()
	return len(st) > 0 && st[0].State == "connected" && p.ep.State() == calling.InCall
}

func reason(p *party, i int) calling.Reason {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.events[i].(calling.CallEnd).Reason
}

// TestLinkLost: the media path is cut for good; once the restart timeout
// has passed both sides end the call with reason "media".
func TestLinkLost(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	nw := newNetem(t, 5*time.Millisecond, "10.9.0.2", "10.9.0.3")
	cfg := media.Config{ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: 3 * time.Second,
		ICEKeepalive: 300 * time.Millisecond, ICERestartTimeout: 5 * time.Second}
	dev, soft := audioPair(t, env, nw, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	callAlice(ctx, dev, soft, calling.Audio)
	cut := time.Now()
	nw.cut.Store(true)
	i := dev.wait(ctx, 0, "call end", isCallEnd)
	j := soft.wait(ctx, 0, "call end", isCallEnd)
	t.Logf("call ended %v after the cut: door %q, alice %q", time.Since(cut), reason(dev, i), reason(soft, j))
	if reason(dev, i) != calling.ReasonMedia || reason(soft, j) != calling.ReasonMedia {
		t.Errorf("reasons %q / %q, want %q on both sides", reason(dev, i), reason(soft, j), calling.ReasonMedia)
	}
}

// TestRestartOffersToAPartyAway: the phone's media link and its signaling
// drop together (it changed networks), so it misses the door's ICE-restart
// offer and never answers. The door offers again every restart interval,
// not once, so a phone that comes back in time finds an offer to answer;
// when the restart timeout passes the door tells the phone it left, reason
// media (a phone that missed everything learns why on its return).
func TestRestartOffersToAPartyAway(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	nw := newNetem(t, 5*time.Millisecond, "10.9.0.2", "10.9.0.3")
	cfg := media.Config{ICEDisconnectedTimeout: time.Second, ICEFailedTimeout: 3 * time.Second,
		ICEKeepalive: 300 * time.Millisecond, ICERestartTimeout: 13 * time.Second}
	var mu sync.Mutex
	var restarts int
	var leave calling.Reason
	dev := newParty(t, env, "door", partyOpts{tone: 440, net: nw.nets[0], cfg: cfg, onEffect: func(e calling.Effect) {
		s, ok := e.(calling.Send)
		if !ok || s.To != "alice" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case s.Msg.Type == calling.MsgOffer && s.Msg.Restart:
			restarts++
		case s.Msg.Type == calling.MsgLeave:
			leave = s.Msg.Reason
		}
	}})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, net: nw.nets[1], cfg: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	callAlice(ctx, dev, soft, calling.Audio)
	mark := dev.eventCount()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	if err := soft.ep.Client().CloseReplaced(cctx); err != nil { // gone without a word
		t.Fatal(err)
	}
	ccancel()
	nw.cut.Store(true)
	i := dev.wait(ctx, mark, "call end", isCallEnd)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("door: %d ICE-restart offers to alice, then the call ended (%s), leave reason %q", restarts, reason(dev, i), leave)
	// Down about 1 s after the cut, restart offers at 0, 4 and 8 s of the
	// 13 s restart timeout.
	if restarts < 2 {
		t.Errorf("%d ICE-restart offers to a party that never answered, want one every interval", restarts)
	}
	if leave != calling.ReasonMedia || reason(dev, i) != calling.ReasonMedia {
		t.Errorf("door ended with %q and sent leave %q, want %q for both", reason(dev, i), leave, calling.ReasonMedia)
	}
}

// TestRoundTripTime: over a link with 20 ms of delay each way, both sides
// measure the round-trip time from the receiver reports answering their
// sender reports.
func TestRoundTripTime(t *testing.T) {
	env := mqtttest.StartEmbedded(t, mqtttest.Options{})
	const delay = 20 * time.Millisecond
	nw := newNetem(t, delay, "10.9.0.2", "10.9.0.3")
	cfg := media.Config{StatsInterval: 500 * time.Millisecond}
	dev := newParty(t, env, "door", partyOpts{tone: 440, camera: true, net: nw.nets[0], cfg: cfg})
	soft := newParty(t, env, "alice", partyOpts{tone: 880, autoAnswer: true, net: nw.nets[1], cfg: cfg})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	callAlice(ctx, dev, soft, calling.Video)
	for _, p := range []*party{dev, soft} {
		var st []media.PeerStats
		for len(st) == 0 || st[0].RTT == 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: no round-trip time measured: %+v", p.user, st)
			case <-time.After(100 * time.Millisecond):
			}
			st = p.media.Stats()
		}
		t.Logf("%s measures %v", p.user, st[0].RTT)
		if rtt := st[0].RTT; rtt < 2*delay || rtt > 2*delay+time.Second {
			t.Errorf("%s: RTT %v, want at least the link's %v and not absurdly more", p.user, rtt, 2*delay)
		}
	}
}
