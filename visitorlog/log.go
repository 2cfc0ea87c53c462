// Package visitorlog keeps the door station's visitor log: one entry per
// doorbell ring with its time, a JPEG snapshot of the camera at the press,
// who answered (or that nobody did, or who declined), who opened the door,
// how long the call lasted and the visitor's voice message (Ogg Opus) when
// nobody answered. The log lives in a directory of the daemon's state (an
// index, one picture and one message per entry), survives restarts,
// is written atomically (a power cut leaves the old index or the new) and
// is bounded by a number of entries and a number of bytes, the oldest
// entries going first. A write that fails (a full disk) drops the oldest
// entries and tries again; what still cannot be written stays in memory,
// and the caller's ring goes on regardless.
//
// Tracker (tracker.go) derives the rings and their outcomes from the
// calling events; the daemon feeds its changes to Log. Log is safe for
// concurrent use; its methods write to disk before they return, so call
// them off the calling loop.
package visitorlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/intercomd/intercomd/internal/ids"
	"github.com/intercomd/intercomd/internal/statefile"
)

// Entry is one ring.
type Entry struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Outcome is Ringing until the ring's call ends.
	Outcome Outcome `json:"outcome"`
	// AnsweredBy is the user who answered, "" when nobody did.
	AnsweredBy string `json:"answered_by,omitempty"`
	// DeclinedBy lists the users who declined.
	DeclinedBy []string `json:"declined_by,omitempty"`
	// Doors are the door's openings during the ring's call.
	Doors []DoorOpening `json:"doors,omitempty"`
	// DurationMS is how long the call lasted from the answer, in
	// milliseconds (0 when nobody answered).
	DurationMS int64 `json:"duration_ms"`
	// Snapshot says whether the entry has a picture (Log.Image).
	Snapshot bool `json:"snapshot"`
	// Message says whether the entry has a voice message (Log.Audio).
	Message bool `json:"message"`
	// MessageMS is the message's length in milliseconds.
	MessageMS int64 `json:"message_ms,omitempty"`
	// sizes are the picture's and the message's sizes in bytes.
	sizes [files]int64
}

// file is one of an entry's files.
type file int

const (
	picture file = iota // <id>.jpg
	message             // <id>.ogg
	files               // how many
)

func (f file) ext() string { return [...]string{".jpg", ".ogg"}[f] }

func (f file) String() string { return [...]string{"picture", "message"}[f] }

// has is the entry's flag saying it has f.
func (e *Entry) has(f file) *bool {
	if f == picture {
		return &e.Snapshot
	}
	return &e.Message
}

// DoorOpening is one opening of the door.
type DoorOpening struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Options bounds the log.
type Options struct {
	// MaxEntries is the number of entries kept (at least 1).
	MaxEntries int
	// MaxBytes bounds the index, the pictures and the messages together.
	MaxBytes int64
	// Disk is where the files go; Dir(path) for a directory.
	Disk Disk
}

// ErrNotFound: no such entry, or it has no such picture or message.
var ErrNotFound = errors.New("visitorlog: no such entry, picture or message")

const indexFile = "index.json"

// index is the file's layout: a version and the entries, oldest first.
type index struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Log is the visitor log.
type Log struct {
	opts    Options
	mu      sync.Mutex
	entries []Entry // oldest first
}

var idPattern = regexp.MustCompile(`^[0-9]{14}-[a-z0-9]{16}$`)

// ValidID reports whether id can name an entry (a request's path).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Open loads the log from opts.Disk. An index that cannot be read is set
// aside (renamed to index.json.bad), named in the error, and the log
// starts empty: the daemon runs on. Files no entry names are removed,
// and a ring the daemon was in the middle of is Interrupted.
func Open(opts Options) (*Log, error) {
	if opts.MaxEntries < 1 {
		return nil, fmt.Errorf("visitorlog: MaxEntries %d: at least 1", opts.MaxEntries)
	}
	if opts.Disk == nil {
		return nil, errors.New("visitorlog: no Disk")
	}
	l := &Log{opts: opts}
	var bad error
	b, err := opts.Disk.ReadFile(indexFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("visitorlog: %w", err)
	default:
		var ix index
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ix); err != nil || ix.Version != 1 {
			if err == nil {
				err = fmt.Errorf("version %d, want 1", ix.Version)
			}
			bad = fmt.Errorf("visitorlog: %s unreadable (%v): set aside as %s.bad, starting empty", indexFile, err, indexFile)
			_ = opts.Disk.WriteFile(indexFile+".bad", b)
			_ = opts.Disk.Remove(indexFile)
		} else {
			l.entries = ix.Entries
		}
	}
	names, err := opts.Disk.List()
	if err != nil {
		return nil, fmt.Errorf("visitorlog: %w", err)
	}
	var sizes [files]map[string]int64
	for f := range files {
		sizes[f] = map[string]int64{}
	}
	for _, n := range names {
		if strings.HasPrefix(n.Name, ".tmp-") {
			_ = opts.Disk.Remove(n.Name) // a write a power cut interrupted
			continue
		}
		for f := range files {
			if id, ok := strings.CutSuffix(n.Name, f.ext()); ok {
				sizes[f][id] = n.Size
			}
		}
	}
	l.entries = slices.DeleteFunc(l.entries, func(e Entry) bool { return !ValidID(e.ID) })
	for i := range l.entries {
		e := &l.entries[i]
		for f := range files {
			size, ok := sizes[f][e.ID]
			*e.has(f), e.sizes[f] = ok, size
			delete(sizes[f], e.ID)
		}
		if !e.Message {
			e.MessageMS = 0
		}
		if e.Outcome == Ringing {
			e.Outcome = Interrupted
		}
	}
	for f := range files {
		for id := range sizes[f] {
			_ = opts.Disk.Remove(id + f.ext())
		}
	}
	l.trim("")
	return l, errors.Join(bad, l.save())
}

// Ring adds the entry of a ring at at and returns its ID.
func (l *Log) Ring(at time.Time) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := at.UTC().Format("20060102150405") + "-" + ids.New()
	l.entries = append(l.entries, Entry{ID: id, Time: at, Outcome: Ringing})
	l.trim(id)
	return id, l.save()
}

// Snapshot stores the picture of entry id. A picture that cannot be
// written (a full disk, even after the oldest entries went) leaves the
// entry without one.
func (l *Log) Snapshot(id string, jpeg []byte) error {
	return l.attach(id, picture, jpeg, nil)
}

// Message stores the voice message of entry id, Ogg Opus of length d. It
// counts in MaxBytes like a picture; one that cannot be written (a full
// disk, even after the oldest entries went) leaves the entry without one.
func (l *Log) Message(id string, ogg []byte, d time.Duration) error {
	return l.attach(id, message, ogg, func(e *Entry) { e.MessageMS = d.Milliseconds() })
}

// attach writes file f of entry id, then applies set to the entry. The
// oldest entries make room first, within MaxBytes, and go one by one while
// the disk refuses the file.
func (l *Log) attach(id string, f file, data []byte, set func(*Entry)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.find(id)
	if e == nil {
		return ErrNotFound
	}
	if int64(len(data)) > l.opts.MaxBytes/2 {
		return fmt.Errorf("visitorlog: %s of %d bytes: larger than half of max bytes", f, len(data))
	}
	old := e.sizes[f] // the file it replaces, if any, stays on failure
	e.sizes[f] = int64(len(data))
	l.trim(id)
	for {
		err := l.opts.Disk.WriteFile(id+f.ext(), data)
		if err == nil {
			break
		}
		if !l.dropOldest(id) {
			e = l.find(id)
			e.sizes[f] = old
			return errors.Join(fmt.Errorf("visitorlog: %s of %s: %w", f, id, err), l.save())
		}
	}
	e = l.find(id)
	*e.has(f) = true
	if set != nil {
		set(e)
	}
	return l.save()
}

// Answered records that user answered ring id.
func (l *Log) Answered(id, user string) error {
	return l.update(id, func(e *Entry) { e.AnsweredBy = user })
}

// Declined records that user declined ring id.
func (l *Log) Declined(id, user string) error {
	return l.update(id, func(e *Entry) {
		if !slices.Contains(e.DeclinedBy, user) {
			e.DeclinedBy = append(e.DeclinedBy, user)
		}
	})
}

// DoorOpened records that by opened the door at at during ring id.
func (l *Log) DoorOpened(id, by string, at time.Time) error {
	return l.update(id, func(e *Entry) { e.Doors = append(e.Doors, DoorOpening{By: by, At: at}) })
}

// End records the outcome and the call's duration of ring id.
func (l *Log) End(id string, out Outcome, d time.Duration) error {
	return l.update(id, func(e *Entry) { e.Outcome, e.DurationMS = out, d.Milliseconds() })
}

// List returns the entries, newest first.
func (l *Log) List() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(l.entries))
	for i := len(l.entries) - 1; i >= 0; i-- {
		e := l.entries[i]
		e.DeclinedBy = slices.Clone(e.DeclinedBy)
		e.Doors = slices.Clone(e.Doors)
		out = append(out, e)
	}
	return out
}

// Image returns the picture of entry id; ErrNotFound when it has none.
func (l *Log) Image(id string) ([]byte, error) { return l.read(id, picture) }

// Audio returns the voice message of entry id, Ogg Opus; ErrNotFound when
// it has none.
func (l *Log) Audio(id string) ([]byte, error) { return l.read(id, message) }

func (l *Log) read(id string, f file) ([]byte, error) {
	l.mu.Lock()
	e := l.find(id)
	ok := e != nil && *e.has(f)
	l.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	b, err := l.opts.Disk.ReadFile(id + f.ext())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

func (l *Log) update(id string, fn func(*Entry)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.find(id)
	if e == nil {
		return ErrNotFound
	}
	fn(e)
	return l.save()
}

func (l *Log) find(id string) *Entry {
	for i := range l.entries {
		if l.entries[i].ID == id {
			return &l.entries[i]
		}
	}
	return nil
}

// indexBytes encodes the index.
func (l *Log) indexBytes() []byte {
	b, _ := json.Marshal(index{Version: 1, Entries: l.entries}) // plain data: cannot fail
	return b
}

// used is the bytes the log takes: the index, the pictures and the
// messages.
func (l *Log) used() int64 {
	n := int64(len(l.indexBytes()))
	for _, e := range l.entries {
		for _, s := range e.sizes {
			n += s
		}
	}
	return n
}

// trim drops the oldest entries (never keep) until the log is within its
// bounds.
func (l *Log) trim(keep string) {
	for len(l.entries) > l.opts.MaxEntries || (len(l.entries) > 0 && l.used() > l.opts.MaxBytes) {
		if !l.dropOldest(keep) {
			return
		}
	}
}

// dropOldest removes the oldest entry other than keep and its files; it
// reports false when there is none.
func (l *Log) dropOldest(keep string) bool {
	for i, e := range l.entries {
		if e.ID == keep {
			continue
		}
		for f := range files {
			if e.sizes[f] > 0 || *e.has(f) {
				_ = l.opts.Disk.Remove(e.ID + f.ext())
			}
		}
		l.entries = slices.Delete(l.entries, i, i+1)
		return true
	}
	return false
}

// save writes the index; when that fails it drops the oldest entries one
// by one and tries again, down to the newest.
func (l *Log) save() error {
	for {
		err := l.opts.Disk.WriteFile(indexFile, l.indexBytes())
		if err == nil {
			return nil
		}
		keep := ""
		if n := len(l.entries); n > 0 {
			keep = l.entries[n-1].ID
		}
		if !l.dropOldest(keep) {
			return fmt.Errorf("visitorlog: %w", err)
		}
	}
}

// File is a file of the log's directory.
type File struct {
	Name string
	Size int64
}

// Disk is where the log keeps its files: an index, the pictures and the
// messages, by plain names.
type Disk interface {
	// WriteFile replaces name atomically: a reader sees the old content
	// or the new.
	WriteFile(name string, data []byte) error
	// ReadFile returns name's content; an error wrapping fs.ErrNotExist
	// when there is none.
	ReadFile(name string) ([]byte, error)
	// Remove removes name; no error when there is none.
	Remove(name string) error
	// List lists the files.
	List() ([]File, error)
}

// Dir is a directory on disk (made with mode 0700 on first write).
type Dir string

// WriteFile implements Disk.
func (d Dir) WriteFile(name string, data []byte) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	return statefile.Write(filepath.Join(string(d), name), data, 0o600)
}

// ReadFile implements Disk.
func (d Dir) ReadFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

// Remove implements Disk.
func (d Dir) Remove(name string) error {
	err := os.Remove(filepath.Join(string(d), name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List implements Disk.
func (d Dir) List() ([]File, error) {
	des, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []File
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		out = append(out, File{Name: de.Name(), Size: info.Size()})
	}
	return out, nil
}
