package voicemsg

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// page is one Ogg page as read back.
type page struct {
	flags   byte
	granule uint64
	serial  uint32
	seq     uint32
	packets [][]byte // whole packets ending on the page
}

// readOgg splits an Ogg stream into pages, checking each page's capture
// pattern and CRC; packets never span pages in what writeOgg writes.
func readOgg(t *testing.T, b []byte) []page {
	t.Helper()
	var pages []page
	for len(b) > 0 {
		if len(b) < oggHeaderSize || string(b[:4]) != "OggS" || b[4] != 0 {
			t.Fatalf("page %d: no Ogg page header", len(pages))
		}
		n := int(b[26])
		lacing := b[oggHeaderSize : oggHeaderSize+n]
		size := oggHeaderSize + n
		for _, l := range lacing {
			size += int(l)
		}
		raw := bytes.Clone(b[:size])
		want := binary.LittleEndian.Uint32(raw[22:])
		clear(raw[22:26])
		if got := oggCRC(raw); got != want {
			t.Fatalf("page %d: CRC %08x, the page says %08x", len(pages), got, want)
		}
		p := page{flags: b[5], granule: binary.LittleEndian.Uint64(b[6:]), serial: binary.LittleEndian.Uint32(b[14:]), seq: binary.LittleEndian.Uint32(b[18:])}
		body := b[oggHeaderSize+n : size]
		var cur []byte
		for i, l := range lacing {
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				p.packets = append(p.packets, cur)
				cur = nil
			} else if i == len(lacing)-1 {
				t.Fatalf("page %d: a packet continues past the page", len(pages))
			}
		}
		pages = append(pages, p)
		b = b[size:]
	}
	return pages
}

// The writer's pages: OpusHead and OpusTags alone, then the packets as
// given, in pages of at most a second and 255 lacing values, numbered in
// sequence, the granule position counting samples, the last page EOS.
func TestWriteOgg(t *testing.T) {
	var packets [][]byte
	for i, n := range []int{1, 254, 255, 256, 510, 1275, 40, 40} {
		packets = append(packets, bytes.Repeat([]byte{byte(i + 1)}, n))
	}
	for range 120 { // more than a page of small packets
		packets = append(packets, []byte{0xfc, 1, 2})
	}
	// Big packets: six lacing values each, so a page holds 42.
	for range 60 {
		packets = append(packets, bytes.Repeat([]byte{7}, 1275))
	}
	b, err := writeOgg(0x1234, packets, 960)
	if err != nil {
		t.Fatal(err)
	}
	pages := readOgg(t, b)
	if len(pages) < 5 {
		t.Fatalf("%d pages", len(pages))
	}
	head, tags := pages[0], pages[1]
	if head.flags != flagBOS || len(head.packets) != 1 || string(head.packets[0][:8]) != "OpusHead" || head.packets[0][9] != 1 ||
		binary.LittleEndian.Uint16(head.packets[0][10:]) != preSkip || binary.LittleEndian.Uint32(head.packets[0][12:]) != 48000 {
		t.Errorf("the first page: %+v", head)
	}
	if tags.flags != 0 || len(tags.packets) != 1 || !bytes.HasPrefix(tags.packets[0], []byte("OpusTags\x09\x00\x00\x00intercomd")) {
		t.Errorf("the second page: %+v", tags)
	}
	var got [][]byte
	for i, p := range pages {
		if p.serial != 0x1234 || p.seq != uint32(i) {
			t.Errorf("page %d: serial %x, sequence %d", i, p.serial, p.seq)
		}
		if i < 2 {
			continue
		}
		if len(p.packets) > packetsPerPage {
			t.Errorf("page %d: %d packets, more than a second", i, len(p.packets))
		}
		got = append(got, p.packets...)
		if p.granule != uint64(len(got)*960) {
			t.Errorf("page %d: granule %d after %d packets", i, p.granule, len(got))
		}
		if last := i == len(pages)-1; (p.flags == flagEOS) != last || (p.flags != 0 && !last) {
			t.Errorf("page %d of %d: flags %x", i, len(pages), p.flags)
		}
	}
	if len(got) != len(packets) {
		t.Fatalf("%d packets read back, %d written", len(got), len(packets))
	}
	for i := range got {
		if !bytes.Equal(got[i], packets[i]) {
			t.Fatalf("packet %d: %d bytes read back, %d written", i, len(got[i]), len(packets[i]))
		}
	}
	if _, err := writeOgg(1, nil, 960); err == nil {
		t.Error("an empty stream was written")
	}
}

// oggCRC is Ogg's CRC-32 (polynomial 0x04c11db7, MSB first, no
// reflection, initial value and final XOR 0): POSIX cksum's CRC without
// its final inversion, whose check value is 0x765e7680.
func TestOggCRC(t *testing.T) {
	if got := oggCRC([]byte("123456789")); got != 0x89a1897f {
		t.Fatalf("oggCRC(123456789) = %08x, want 89a1897f (0x765e7680 inverted)", got)
	}
}
