package camera

import (
	"errors"
	"fmt"
	"io"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// RTCPReader reads the RTCP a viewer sends about the track; *webrtc.RTPSender
// implements it.
type RTCPReader interface {
	ReadRTCP() ([]rtcp.Packet, interceptor.Attributes, error)
}

// DrainRTCP reads sender's RTCP until the sender stops (its PeerConnection closes or the
// track is removed), asking for a key frame on every picture loss indication (PLI) and
// full intra request (FIR). It returns nil when the sender ended normally (io.EOF or a
// closed pipe) and the read error otherwise. Reading is required: RTCP that nobody
// reads stalls the sender's interceptors. Call it exactly once per sender, on a
// goroutine the media layer owns and joins after closing the PeerConnection; or use
// HandleRTCP.
func (p *Pipeline) DrainRTCP(sender RTCPReader) error {
	return ReadRTCP(sender, p.ForceKeyFrame)
}

// ReadRTCP reads r's RTCP until r stops, calling onKeyFrame (when not nil)
// for every picture loss indication (PLI) and full intra request (FIR). It
// returns nil when r ended normally (io.EOF or a closed pipe) and the read
// error otherwise. Every sender's and receiver's RTCP must be read, also
// when nobody needs it: pion's interceptors see only what is read, and RTCP
// nobody reads stalls them. *webrtc.RTPSender and *webrtc.RTPReceiver are
// RTCPReaders.
func ReadRTCP(r RTCPReader, onKeyFrame func()) error {
	for {
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return nil
			}
			return fmt.Errorf("read rtcp: %w", err)
		}
		if onKeyFrame == nil {
			continue
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				onKeyFrame()
			}
		}
	}
}

// HandleRTCP runs DrainRTCP on a new goroutine and returns a channel closed when it has
// returned, that is once sender has stopped. Its goroutine is not joined by Close (it
// ends with the sender, whose PeerConnection the media layer closes): wait on the
// channel after closing the PeerConnection.
func (p *Pipeline) HandleRTCP(sender RTCPReader) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.DrainRTCP(sender); err != nil {
			p.log.Debug("rtcp reader ended", "err", err)
		}
	}()
	return done
}
