package camera

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// loopbackAPI builds a pion API for peers talking over 127.0.0.1 only, with the codec
// registered before the default interceptors (so the SDP carries nack pli).
func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(CodecParameters(102), webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// viewer is one PeerConnection pair: the intercom's side sending the shared track, and
// a receiving peer reassembling frames.
type viewer struct {
	*assembler
	send, recv *webrtc.PeerConnection
	rtcpDone   <-chan struct{}
	readerDone chan struct{}
	remote     chan *webrtc.TrackRemote
}

// connectViewer connects a new viewer to the pipeline's track, as the media layer
// would: AddTrack, HandleRTCP on the sender, ViewerJoined once connected.
func connectViewer(ctx context.Context, t *testing.T, api *webrtc.API, p *Pipeline) *viewer {
	t.Helper()
	v := &viewer{assembler: newAssembler(), readerDone: make(chan struct{}), remote: make(chan *webrtc.TrackRemote, 1)}
	var err error
	if v.send, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if v.recv, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	sender, err := v.send.AddTrack(p.Track())
	if err != nil {
		t.Fatal(err)
	}
	v.rtcpDone = p.HandleRTCP(sender)

	var once sync.Once
	v.recv.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		once.Do(func() {
			v.remote <- tr
			go func() {
				defer close(v.readerDone)
				for {
					pkt, _, err := tr.ReadRTP()
					if err != nil {
						return
					}
					if err := v.push(&pkt.Header, pkt.Payload); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		})
	})
	connected := make(chan struct{})
	var connOnce sync.Once
	v.send.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			connOnce.Do(func() { close(connected) })
		}
	})

	offer, err := v.send.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(v.send)
	if err := v.send.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, gathered, "sender ICE gathering")
	if err := v.recv.SetRemoteDescription(*v.send.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	answer, err := v.recv.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(v.recv)
	if err := v.recv.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, gathered, "receiver ICE gathering")
	if err := v.send.SetRemoteDescription(*v.recv.LocalDescription()); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, connected, "viewer connection")
	p.ViewerJoined()
	return v
}

// close closes both peers and joins the goroutines reading from them.
func (v *viewer) close(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := v.send.Close(); err != nil {
		t.Error(err)
	}
	if err := v.recv.Close(); err != nil {
		t.Error(err)
	}
	waitFor(ctx, t, v.rtcpDone, "RTCP reader to end")
	select {
	case <-v.remote:
		waitFor(ctx, t, v.readerDone, "RTP reader to end")
	default:
	}
}

func waitFor(ctx context.Context, t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

// Three viewers on real PeerConnections share one encoder and receive the same
// frames, key frames included; a PLI from one of them yields a key frame for all.
func TestThreeViewersOneEncoder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := Config{
		Sources: []Source{patternSourceConfig("pattern", 5)},
		Encoder: Encoder{KeyFrameInterval: 100000, MinKeyFrameGap: 300 * time.Millisecond},
	}
	p := startPipeline(ctx, t, cfg, nil)
	api := loopbackAPI(t)

	var viewers []*viewer
	defer func() {
		for _, v := range viewers {
			v.close(ctx, t)
		}
	}()
	lists := make([][]frame, 3)
	for i := range 3 {
		v := connectViewer(ctx, t, api, p)
		viewers = append(viewers, v)
		// The viewer's picture starts with the key frame its joining forced.
		for {
			f := v.next(ctx, t)
			if f.key() {
				lists[i] = append(lists[i], f)
				break
			}
		}
	}
	if n, s := p.EncodersRunning(), p.EncodersStarted(); n != 1 || s != 1 {
		t.Fatalf("with 3 viewers: EncodersRunning %d, EncodersStarted %d, want 1, 1", n, s)
	}

	// The last viewer asks for a key frame, as a browser does after loss.
	for i, v := range viewers {
		lists[i] = append(lists[i], v.pending()...)
	}
	remote := <-viewers[2].remote
	viewers[2].remote <- remote
	requests := p.Status().KeyFrameRequests
	if err := viewers[2].recv.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}); err != nil {
		t.Fatal(err)
	}
	const more = 45 // 1.5 s: room for the PLI's key frame after the rate limit
	for i, v := range viewers {
		lists[i] = append(lists[i], collect(ctx, t, v.assembler, more)...)
	}
	if got := p.Status().KeyFrameRequests; got <= requests {
		t.Errorf("PLI did not reach the pipeline: %d key frame requests before, %d after", requests, got)
	}

	// The last viewer's frames appear, identical and in order, in the others' lists.
	last := lists[2]
	for i := range 2 {
		j := -1
		for k, f := range lists[i] {
			if f.hash() == last[0].hash() {
				j = k
				break
			}
		}
		if j < 0 {
			t.Fatalf("viewer %d never received viewer 2's first key frame", i)
		}
		common := min(len(lists[i])-j, len(last))
		keys := 0
		for k := range common {
			if lists[i][j+k].hash() != last[k].hash() {
				t.Fatalf("viewer %d frame %d differs from viewer 2 frame %d", i, j+k, k)
			}
			if last[k].key() {
				keys++
			}
		}
		if keys < 2 {
			t.Errorf("viewers %d and 2 share %d key frames in %d frames, want the join's and the PLI's", i, keys, common)
		}
	}
	if n, s := p.EncodersRunning(), p.EncodersStarted(); n != 1 || s != 1 {
		t.Errorf("at the end: EncodersRunning %d, EncodersStarted %d, want 1, 1", n, s)
	}
}

// fakeRTCP feeds DrainRTCP a fixed sequence of RTCP reads.
type fakeRTCP struct {
	reads [][]rtcp.Packet
	err   error
}

func (f *fakeRTCP) ReadRTCP() ([]rtcp.Packet, interceptor.Attributes, error) {
	if len(f.reads) == 0 {
		return nil, nil, f.err
	}
	r := f.reads[0]
	f.reads = f.reads[1:]
	return r, nil, nil
}

func TestDrainRTCP(t *testing.T) {
	p, err := New(Config{Sources: []Source{{Device: TestPatternDevice}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRTCP{reads: [][]rtcp.Packet{
		{&rtcp.ReceiverReport{}},
		{&rtcp.PictureLossIndication{}, &rtcp.ReceiverReport{}},
		{&rtcp.FullIntraRequest{}},
		{&rtcp.TransportLayerNack{}},
	}, err: io.EOF}
	if err := p.DrainRTCP(r); err != nil {
		t.Errorf("DrainRTCP ended by EOF: %v, want nil", err)
	}
	if got := p.Status().KeyFrameRequests; got != 2 {
		t.Errorf("key frame requests = %d, want 2 (one PLI, one FIR)", got)
	}
	boom := errors.New("boom")
	if err := p.DrainRTCP(&fakeRTCP{err: boom}); !errors.Is(err, boom) {
		t.Errorf("DrainRTCP = %v, want the read error", err)
	}
}
