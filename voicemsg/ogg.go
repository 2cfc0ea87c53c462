package voicemsg

import (
	"encoding/binary"
	"errors"
)

// Ogg Opus (RFC 7845 in Ogg, RFC 3533), written whole at the end of a
// recording. pion/webrtc's oggwriter puts each Opus packet on a page of its
// own: 28 bytes of page header for every 20 ms packet, 1,400 bytes a
// second, two thirds again on a 16 kbit/s message. This writer packs up to
// a second of packets on a page (about 80 bytes of overhead a second).

const (
	oggHeaderSize  = 27
	maxSegments    = 255
	packetsPerPage = 50 // a second of 20 ms packets: the RFC's seeking granularity

	flagBOS = 0x02
	flagEOS = 0x04

	// preSkip is libopus' encoder delay at 48 kHz (its lookahead for the
	// VOIP application: 2.5 ms + 4 ms), which a player drops from the
	// start.
	preSkip = 312
)

// writeOgg returns the Ogg Opus stream of packets, mono at 48 kHz, each of
// samples samples (48 kHz).
func writeOgg(serial uint32, packets [][]byte, samples int) ([]byte, error) {
	if len(packets) == 0 {
		return nil, errors.New("voicemsg: no packets")
	}
	w := oggWriter{serial: serial}
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1                                       // version
	head[9] = 1                                       // channels
	binary.LittleEndian.PutUint16(head[10:], preSkip) // pre-skip
	binary.LittleEndian.PutUint32(head[12:], 48000)   // input sample rate
	// Output gain 0, channel mapping family 0: zero bytes.
	w.page(flagBOS, 0, [][]byte{head})
	const vendor = "intercomd"
	tags := make([]byte, 0, 16+len(vendor))
	tags = append(tags, "OpusTags"...)
	tags = binary.LittleEndian.AppendUint32(tags, uint32(len(vendor)))
	tags = append(tags, vendor...)
	tags = binary.LittleEndian.AppendUint32(tags, 0) // no comments
	w.page(0, 0, [][]byte{tags})

	var granule uint64
	for len(packets) > 0 {
		n, segs := 0, 0
		for n < len(packets) && n < packetsPerPage {
			s := len(packets[n])/255 + 1
			if segs+s > maxSegments {
				break
			}
			segs += s
			n++
		}
		if n == 0 {
			return nil, errors.New("voicemsg: an Opus packet too large for a page")
		}
		granule += uint64(n * samples)
		flags := byte(0)
		if n == len(packets) {
			flags = flagEOS
		}
		w.page(flags, granule, packets[:n])
		packets = packets[n:]
	}
	return w.buf, nil
}

type oggWriter struct {
	buf    []byte
	serial uint32
	seq    uint32
}

// page appends one page holding whole packets.
func (w *oggWriter) page(flags byte, granule uint64, packets [][]byte) {
	start := len(w.buf)
	w.buf = append(w.buf, "OggS"...)
	w.buf = append(w.buf, 0, flags)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, granule)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, w.serial)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, w.seq)
	w.buf = append(w.buf, 0, 0, 0, 0) // CRC, below
	w.seq++
	nsegs := len(w.buf)
	w.buf = append(w.buf, 0)
	for _, p := range packets {
		for range len(p) / 255 {
			w.buf = append(w.buf, 255)
		}
		w.buf = append(w.buf, byte(len(p)%255)) // 0 ends a packet of 255·k bytes
	}
	w.buf[nsegs] = byte(len(w.buf) - nsegs - 1)
	for _, p := range packets {
		w.buf = append(w.buf, p...)
	}
	binary.LittleEndian.PutUint32(w.buf[start+22:], oggCRC(w.buf[start:]))
}

// oggCRC is Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial
// value and final XOR 0.
func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
