package visitorlog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/visitorlog"
)

// A voice message is kept with its entry across restarts, read back as
// written, and goes with its entry.
func TestLogKeepsAMessage(t *testing.T) {
	dir := t.TempDir()
	l := open(t, visitorlog.Dir(dir), 2, 1<<20)
	id := ring(t, l, t0)
	must(t, l.End(id, visitorlog.Missed, 0))
	ogg := []byte("OggS a message")
	must(t, l.Message(id, ogg, 12345*time.Millisecond))
	other := ring(t, l, t0.Add(time.Minute))

	l = open(t, visitorlog.Dir(dir), 2, 1<<20)
	got := l.List()
	if len(got) != 2 || got[1].ID != id || !got[1].Message || got[1].MessageMS != 12345 || got[1].Snapshot {
		t.Fatalf("after reopening: %+v, want the missed ring with its 12.345 s message", got)
	}
	if got[0].Message || got[0].MessageMS != 0 {
		t.Errorf("an entry without a message: %+v", got[0])
	}
	if b, err := l.Audio(id); err != nil || !bytes.Equal(b, ogg) {
		t.Errorf("Audio = %q, %v", b, err)
	}
	for _, bad := range []string{other, "../index", "20260101000000-aaaaaaaaaaaaaaaa"} {
		if _, err := l.Audio(bad); !errors.Is(err, visitorlog.ErrNotFound) {
			t.Errorf("Audio(%q): %v, want ErrNotFound", bad, err)
		}
	}
	if err := l.Message("20260101000000-aaaaaaaaaaaaaaaa", ogg, time.Second); !errors.Is(err, visitorlog.ErrNotFound) {
		t.Errorf("Message of no entry: %v, want ErrNotFound", err)
	}

	// The entry goes (max 2 entries): its message with it.
	ring(t, l, t0.Add(2*time.Minute))
	if _, err := os.Stat(filepath.Join(dir, id+".ogg")); !os.IsNotExist(err) {
		t.Errorf("the message of a dropped entry is still on disk: %v", err)
	}
	// A message file the index does not know (its write was interrupted
	// by a power cut after the rename, before the index) is removed, and
	// an entry whose file is missing has no message.
	must(t, os.WriteFile(filepath.Join(dir, "20260101000000-bbbbbbbbbbbbbbbb.ogg"), ogg, 0o600))
	l = open(t, visitorlog.Dir(dir), 2, 1<<20)
	if _, err := os.Stat(filepath.Join(dir, "20260101000000-bbbbbbbbbbbbbbbb.ogg")); !os.IsNotExist(err) {
		t.Errorf("an orphan message was kept: %v", err)
	}
}

// Messages count in the log's byte bound with the pictures: the oldest
// entries go to make room, and the directory stays within the bound.
func TestLogMessagesCountInTheSizeBound(t *testing.T) {
	dir := visitorlog.Dir(t.TempDir())
	l := open(t, dir, 100, 20_000)
	pic := bytes.Repeat([]byte{0xaa}, 2000)
	msg := bytes.Repeat([]byte{0xbb}, 4000)
	var ids []string
	for i := range 6 {
		id := ring(t, l, t0.Add(time.Duration(i)*time.Minute))
		must(t, l.Snapshot(id, pic))
		must(t, l.Message(id, msg, 2*time.Second))
		ids = append(ids, id)
	}
	got := l.List()
	// 6000 bytes an entry plus the index: 3 fit in 20000, not 4.
	if len(got) != 3 || got[0].ID != ids[5] || !got[0].Message || !got[0].Snapshot {
		t.Fatalf("%d entries (newest %+v), want the newest 3 with picture and message", len(got), got[0])
	}
	if n := dirSize(t, string(dir)); n > 20_000 {
		t.Errorf("the log takes %d bytes on disk, bound 20000", n)
	}
	if err := l.Message(ids[5], bytes.Repeat([]byte{1}, 10_001), time.Second); err == nil {
		t.Error("a message larger than half the bound was taken")
	}
	if got := l.List(); !got[0].Message || got[0].MessageMS != 2000 {
		t.Errorf("a refused message replaced the one kept: %+v", got[0])
	}
}

// On a full disk a message drops the oldest entries first; when nothing
// makes room the entry stays, without a message, and the error says why.
func TestLogMessageOnAFullDisk(t *testing.T) {
	q := &quota{Dir: visitorlog.Dir(t.TempDir()), max: 10_000}
	l := open(t, q, 100, 1<<20)
	pic := bytes.Repeat([]byte{0xaa}, 3000)
	var ids []string
	for i := range 3 {
		id := ring(t, l, t0.Add(time.Duration(i)*time.Minute))
		must(t, l.Snapshot(id, pic))
		ids = append(ids, id)
	}
	must(t, l.Message(ids[2], bytes.Repeat([]byte{0xbb}, 3000), time.Second))
	got := l.List()
	if got[0].ID != ids[2] || !got[0].Message || got[len(got)-1].ID == ids[0] {
		t.Fatalf("on a full disk: %+v, want the oldest gone and the newest with its message", got)
	}
	q.max = 0
	err := l.Message(ids[2], []byte("OggS"), time.Second)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Message on a disk with no room: %v, want ENOSPC", err)
	}
	if got := l.List(); len(got) != 1 || got[0].ID != ids[2] {
		t.Errorf("with no room: %+v, want the entry alone", got)
	}
}
