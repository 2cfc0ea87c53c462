package visitorlog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/visitorlog"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func open(t *testing.T, d visitorlog.Disk, entries int, bytes int64) *visitorlog.Log {
	t.Helper()
	l, err := visitorlog.Open(visitorlog.Options{MaxEntries: entries, MaxBytes: bytes, Disk: d})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ring(t *testing.T, l *visitorlog.Log, at time.Time) string {
	t.Helper()
	id, err := l.Ring(at)
	must(t, err)
	if !visitorlog.ValidID(id) {
		t.Fatalf("Ring returned the invalid ID %q", id)
	}
	return id
}

func TestTracker(t *testing.T) {
	dial := calling.StateChanged{From: calling.Idle, To: calling.Dialing}
	for _, tc := range []struct {
		name   string
		events []calling.Event
		want   []visitorlog.Change
	}{
		{"answered", []calling.Event{dial, calling.UserEnter{User: "alice"}, calling.UserEnter{User: "bob"},
			calling.CallEnd{Duration: 42 * time.Second}},
			[]visitorlog.Change{{Kind: visitorlog.Rang}, {Kind: visitorlog.Answer, User: "alice"}, {},
				{Kind: visitorlog.End, Outcome: visitorlog.Answered, Duration: 42 * time.Second}}},
		{"declined", []calling.Event{dial, calling.Rejected{User: "bob"}, calling.CallEnd{Reason: calling.ReasonDeclined}},
			[]visitorlog.Change{{Kind: visitorlog.Rang}, {Kind: visitorlog.Decline, User: "bob"}, {Kind: visitorlog.End, Outcome: visitorlog.Declined}}},
		{"declined by one, answered by another", []calling.Event{dial, calling.Rejected{User: "bob"}, calling.UserEnter{User: "alice"}, calling.CallEnd{}},
			[]visitorlog.Change{{Kind: visitorlog.Rang}, {Kind: visitorlog.Decline, User: "bob"}, {Kind: visitorlog.Answer, User: "alice"},
				{Kind: visitorlog.End, Outcome: visitorlog.Answered}}},
		{"missed", []calling.Event{dial, calling.NoResp{User: "alice"}, calling.CallEnd{Reason: calling.ReasonTimeout}},
			[]visitorlog.Change{{Kind: visitorlog.Rang}, {}, {Kind: visitorlog.End, Outcome: visitorlog.Missed}}},
		{"a phone calls the door: no ring", []calling.Event{calling.StateChanged{From: calling.Idle, To: calling.Ringing},
			calling.StateChanged{From: calling.Ringing, To: calling.InCall}, calling.UserEnter{User: "alice"}, calling.CallEnd{}},
			[]visitorlog.Change{{}, {}, {}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr visitorlog.Tracker
			for i, ev := range tc.events {
				if got := tr.Step(ev); got != tc.want[i] {
					t.Errorf("event %d %#v: %+v, want %+v", i, ev, got, tc.want[i])
				}
			}
		})
	}
}

func TestLogKeepsARingAcrossRestarts(t *testing.T) {
	dir := visitorlog.Dir(filepath.Join(t.TempDir(), "visitors"))
	l := open(t, dir, 10, 1<<20)
	id := ring(t, l, t0)
	jpeg := []byte("\xff\xd8 a picture \xff\xd9")
	must(t, l.Snapshot(id, jpeg))
	must(t, l.Answered(id, "alice"))
	must(t, l.DoorOpened(id, "alice", t0.Add(10*time.Second)))
	must(t, l.End(id, visitorlog.Answered, 42*time.Second))
	missed := ring(t, l, t0.Add(time.Hour))
	must(t, l.End(missed, visitorlog.Missed, 0))

	l = open(t, dir, 10, 1<<20)
	got := l.List()
	if len(got) != 2 || got[0].ID != missed || got[1].ID != id {
		t.Fatalf("after reopening: %+v, want the missed ring then the answered one", got)
	}
	e := got[1]
	if !e.Time.Equal(t0) || e.Outcome != visitorlog.Answered || e.AnsweredBy != "alice" || e.DurationMS != 42000 || !e.Snapshot ||
		len(e.Doors) != 1 || e.Doors[0].By != "alice" || !e.Doors[0].At.Equal(t0.Add(10*time.Second)) {
		t.Errorf("answered entry after reopening: %+v", e)
	}
	if got[0].Outcome != visitorlog.Missed || got[0].Snapshot || got[0].AnsweredBy != "" {
		t.Errorf("missed entry after reopening: %+v", got[0])
	}
	b, err := l.Image(id)
	if err != nil || !bytes.Equal(b, jpeg) {
		t.Errorf("Image = %q, %v", b, err)
	}
	if _, err := l.Image(missed); !errors.Is(err, visitorlog.ErrNotFound) {
		t.Errorf("Image of an entry without a picture: %v, want ErrNotFound", err)
	}
	if _, err := l.Image("../index"); !errors.Is(err, visitorlog.ErrNotFound) {
		t.Errorf("Image of a bad ID: %v, want ErrNotFound", err)
	}
}

func TestLogBoundedByCountOldestFirst(t *testing.T) {
	dir := visitorlog.Dir(t.TempDir())
	l := open(t, dir, 3, 1<<20)
	var ids []string
	for i := range 5 {
		id := ring(t, l, t0.Add(time.Duration(i)*time.Minute))
		must(t, l.Snapshot(id, []byte("jpeg")))
		ids = append(ids, id)
	}
	got := l.List()
	if len(got) != 3 || got[0].ID != ids[4] || got[2].ID != ids[2] {
		t.Fatalf("%d entries %v, want the newest 3", len(got), got)
	}
	for _, id := range ids[:2] {
		if _, err := os.Stat(filepath.Join(string(dir), id+".jpg")); !os.IsNotExist(err) {
			t.Errorf("picture of dropped entry %s still on disk: %v", id, err)
		}
	}
	// A smaller bound after a restart applies at once.
	l = open(t, dir, 1, 1<<20)
	if got := l.List(); len(got) != 1 || got[0].ID != ids[4] {
		t.Errorf("reopened with max 1: %v", got)
	}
}

func TestLogBoundedBySize(t *testing.T) {
	dir := visitorlog.Dir(t.TempDir())
	l := open(t, dir, 100, 10_000)
	pic := bytes.Repeat([]byte{0xaa}, 3000)
	var last string
	for i := range 6 {
		last = ring(t, l, t0.Add(time.Duration(i)*time.Minute))
		must(t, l.Snapshot(last, pic))
	}
	got := l.List()
	if len(got) < 2 || len(got) > 3 || got[0].ID != last {
		t.Fatalf("%d entries, want 2 or 3 of 3000 bytes within 10000, the newest first", len(got))
	}
	if n := dirSize(t, string(dir)); n > 10_000 {
		t.Errorf("the log takes %d bytes on disk, bound 10000", n)
	}
	if err := l.Snapshot(last, bytes.Repeat([]byte{1}, 6000)); err == nil {
		t.Error("a picture larger than half the bound was taken")
	}
}

func dirSize(t *testing.T, dir string) int64 {
	des, err := os.ReadDir(dir)
	must(t, err)
	var n int64
	for _, de := range des {
		info, err := de.Info()
		must(t, err)
		n += info.Size()
	}
	return n
}

func TestLogSetsAsideABadIndexAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	l := open(t, visitorlog.Dir(dir), 10, 1<<20)
	id := ring(t, l, t0) // the daemon stops during this ring
	must(t, os.WriteFile(filepath.Join(dir, "orphan"+".jpg"), []byte("x"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, ".tmp-index.json-123"), []byte("x"), 0o600))
	l = open(t, visitorlog.Dir(dir), 10, 1<<20)
	if got := l.List(); len(got) != 1 || got[0].ID != id || got[0].Outcome != visitorlog.Interrupted {
		t.Errorf("a ring under way at the stop: %+v, want interrupted", got)
	}
	for _, n := range []string{"orphan.jpg", ".tmp-index.json-123"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", n, err)
		}
	}

	must(t, os.WriteFile(filepath.Join(dir, "index.json"), []byte(`{"version":1,"entries":[{"id":`), 0o600))
	l, err := visitorlog.Open(visitorlog.Options{MaxEntries: 10, MaxBytes: 1 << 20, Disk: visitorlog.Dir(dir)})
	if err == nil || !strings.Contains(err.Error(), "index.json.bad") {
		t.Fatalf("Open of a truncated index: %v, want an error naming index.json.bad", err)
	}
	if l == nil || len(l.List()) != 0 {
		t.Fatal("a bad index must leave an empty, working log")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "index.json.bad")); err != nil || !strings.HasPrefix(string(b), `{"version":1`) {
		t.Errorf("the bad index was not kept aside: %q %v", b, err)
	}
	ring(t, l, t0)
}

// quota is a directory that refuses writes that would take it over max
// bytes, as a full disk does (ENOSPC).
type quota struct {
	visitorlog.Dir
	mu  sync.Mutex
	max int64
}

func (q *quota) WriteFile(name string, data []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	files, err := q.List()
	if err != nil {
		return err
	}
	used := int64(len(data))
	for _, f := range files {
		if f.Name != name {
			used += f.Size
		}
	}
	if used > q.max {
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return q.Dir.WriteFile(name, data)
}

func TestLogFullDiskDropsTheOldest(t *testing.T) {
	q := &quota{Dir: visitorlog.Dir(t.TempDir()), max: 8000}
	l := open(t, q, 100, 1<<20) // the disk fills before the log's own bound
	pic := bytes.Repeat([]byte{0xaa}, 2000)
	var ids []string
	for i := range 8 {
		id := ring(t, l, t0.Add(time.Duration(i)*time.Minute))
		must(t, l.Snapshot(id, pic))
		must(t, l.End(id, visitorlog.Missed, 0))
		ids = append(ids, id)
	}
	got := l.List()
	if len(got) < 2 || len(got) > 4 || got[0].ID != ids[7] || !got[0].Snapshot {
		t.Fatalf("on a full disk: %d entries, the newest %+v; want the newest few, with its picture", len(got), got[0])
	}
	// Nothing fits any more: the ring is still recorded (in memory), its
	// picture refused with the write's error.
	q.max = 0
	id, err := l.Ring(t0.Add(time.Hour))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Ring on a disk with no room: %v, want ENOSPC", err)
	}
	if err := l.Snapshot(id, pic); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Snapshot on a disk with no room: %v, want ENOSPC", err)
	}
	got = l.List()
	if len(got) != 1 || got[0].ID != id || got[0].Snapshot {
		t.Errorf("with no room: %+v, want the new ring alone without a picture", got)
	}
	// Room again: the next change writes it.
	q.max = 1 << 20
	must(t, l.End(id, visitorlog.Answered, time.Second))
	l = open(t, q, 100, 1<<20)
	if got := l.List(); len(got) != 1 || got[0].ID != id || got[0].Outcome != visitorlog.Answered {
		t.Errorf("after room came back and a restart: %+v", got)
	}
}
