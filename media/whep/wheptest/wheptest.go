// Package wheptest is a WHEP client for tests and benchmarks: a pion
// PeerConnection that receives video and audio, posts its complete offer
// as go2rtc does, and reports when the first complete key frame arrived
// (its last packet, the one with the marker bit, received).
package wheptest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/intercomd/intercomd/media"
)

// Options configure Dial.
type Options struct {
	// HTTP posts the offer; default http.DefaultClient.
	HTTP *http.Client
	// Token, when set, goes in an Authorization: Bearer header (put it in
	// the URL to test ?token=).
	Token string
	// Video and Audio are the kinds to receive; both when neither is set.
	Video, Audio bool
	// Loopback gathers 127.0.0.1 candidates only.
	Loopback bool
}

// Client is one WHEP session from the client's side.
type Client struct {
	pc       *webrtc.PeerConnection
	http     *http.Client
	token    string
	Location string // the session's resource, absolute
	Posted   time.Time

	firstKey  chan struct{}
	keyAt     atomic.Pointer[time.Time]
	keyAU     atomic.Pointer[[]byte]
	frames    atomic.Int64 // complete video frames
	audioPkts atomic.Int64
	wg        sync.WaitGroup
	once      sync.Once
}

// StatusError is a refusal of the offer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("whep: %d %s: %s", e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

// NewPeerConnection returns a receive-only PeerConnection with pion's
// default codecs and interceptors, its offer's candidates gathered.
func NewPeerConnection(o Options) (*webrtc.PeerConnection, error) {
	var se webrtc.SettingEngine
	if o.Loopback {
		se = LoopbackSettings()
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	return NewPeerConnectionWith(webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), o)
}

// LoopbackSettings gather 127.0.0.1 candidates only.
func LoopbackSettings() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return se
}

// NewPeerConnectionWith is NewPeerConnection with the codecs and settings
// of api (o.Loopback is then api's business).
func NewPeerConnectionWith(api *webrtc.API, o Options) (*webrtc.PeerConnection, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	if !o.Video && !o.Audio {
		o.Video, o.Audio = true, true
	}
	for kind, on := range map[webrtc.RTPCodecType]bool{webrtc.RTPCodecTypeVideo: o.Video, webrtc.RTPCodecTypeAudio: o.Audio} {
		if !on {
			continue
		}
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			pc.Close()
			return nil, err
		}
	}
	return pc, nil
}

// CompleteOffer makes pc's offer and waits for its candidates.
func CompleteOffer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// Post sends an offer body with a content type and returns the response
// (closed) and its body.
func Post(ctx context.Context, hc *http.Client, endpoint, token, contentType string, body io.Reader) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

// Dial starts a session at endpoint: it posts a complete offer and applies
// the answer. A refusal is a *StatusError.
func Dial(ctx context.Context, endpoint string, o Options) (*Client, error) {
	pc, err := NewPeerConnection(o)
	if err != nil {
		return nil, err
	}
	c := &Client{pc: pc, http: o.HTTP, token: o.Token, firstKey: make(chan struct{})}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				c.readVideo(tr)
				return
			}
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				c.audioPkts.Add(1)
			}
		}()
	})
	offer, err := CompleteOffer(ctx, pc)
	if err != nil {
		c.closePC()
		return nil, err
	}
	c.Posted = time.Now()
	res, answer, err := Post(ctx, c.http, endpoint, o.Token, "application/sdp", strings.NewReader(offer))
	if err != nil {
		c.closePC()
		return nil, err
	}
	if res.StatusCode != http.StatusCreated {
		c.closePC()
		return nil, &StatusError{Status: res.StatusCode, Body: answer}
	}
	loc, err := res.Request.URL.Parse(res.Header.Get("Location"))
	if err != nil || res.Header.Get("Location") == "" {
		c.closePC()
		return nil, fmt.Errorf("whep: 201 without a valid Location (%q)", res.Header.Get("Location"))
	}
	// The token stays in the query for DELETE when it came that way.
	if q := res.Request.URL.Query().Get("token"); q != "" {
		loc.RawQuery = url.Values{"token": {q}}.Encode()
	}
	c.Location = loc.String()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		c.closePC()
		return nil, fmt.Errorf("whep: answer: %w", err)
	}
	return c, nil
}

// readVideo rebuilds frames from the packets: a frame is complete when
// the packet with the marker bit arrives and none of its packets is
// missing.
func (c *Client) readVideo(tr *webrtc.TrackRemote) {
	var (
		dep     codecs.H264Packet
		au      []byte
		ts      uint32
		next    uint16
		started bool
		intact  bool
	)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if !started || pkt.Timestamp != ts {
			au, ts, intact = au[:0], pkt.Timestamp, !started || pkt.SequenceNumber == next
		} else if pkt.SequenceNumber != next {
			intact = false
		}
		started, next = true, pkt.SequenceNumber+1
		if nal, err := dep.Unmarshal(pkt.Payload); err == nil {
			au = append(au, nal...)
		}
		if !pkt.Marker {
			continue
		}
		c.frame(au, intact)
	}
}

func (c *Client) frame(au []byte, intact bool) {
	if !intact {
		return
	}
	c.frames.Add(1)
	if c.keyAt.Load() == nil && media.IsKeyFrame(au) {
		now := time.Now()
		cp := append([]byte(nil), au...)
		c.keyAU.Store(&cp)
		c.keyAt.Store(&now)
		close(c.firstKey)
	}
}

// FirstKeyFrame waits for the first complete key frame and returns when
// its last packet arrived, and the frame (Annex B).
func (c *Client) FirstKeyFrame(ctx context.Context) (time.Time, []byte, error) {
	select {
	case <-c.firstKey:
		return *c.keyAt.Load(), *c.keyAU.Load(), nil
	case <-ctx.Done():
		return time.Time{}, nil, fmt.Errorf("no complete key frame: %w (%d frames, %d audio packets)", ctx.Err(), c.frames.Load(), c.audioPkts.Load())
	}
}

// Frames is the number of complete video frames received.
func (c *Client) Frames() int64 { return c.frames.Load() }

// AudioPackets is the number of audio packets received.
func (c *Client) AudioPackets() int64 { return c.audioPkts.Load() }

// State is the connection's state.
func (c *Client) State() webrtc.PeerConnectionState { return c.pc.ConnectionState() }

// Delete ends the session with DELETE on its resource, then closes the
// connection; it returns the DELETE's status.
func (c *Client) Delete(ctx context.Context) (int, error) {
	defer c.closePC()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.Location, nil)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// Close closes the connection without telling the server (as go2rtc
// does) and waits for the readers.
func (c *Client) Close() { c.closePC() }

func (c *Client) closePC() {
	c.once.Do(func() {
		_ = c.pc.Close()
		c.wg.Wait()
	})
}
