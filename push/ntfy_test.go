package push

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
)

// ntfyServer checks publications as ntfy's publish API documents them
// (https://docs.ntfy.sh/publish/): PUT or POST to /<topic>; the message in
// the body or, with an attachment as the body, in the Message header;
// Title, Priority (1-5 or min/low/default/high/urgent), Tags, Click,
// Actions, Filename; Authorization: Bearer <token>. heckel.io/ntfy is not
// served by the module proxy here and Debian 12 has no ntfy package, so
// this stands in for a real server.
type ntfyServer struct {
	*httptest.Server
	mu   sync.Mutex
	pubs []ntfyPub
}

type ntfyPub struct {
	method, topic, auth string
	header              http.Header
	body                []byte
}

func newNtfyServer(t *testing.T) *ntfyServer {
	s := &ntfyServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		topic := strings.TrimPrefix(r.URL.Path, "/")
		if (r.Method != http.MethodPut && r.Method != http.MethodPost) || topic == "" || strings.Contains(topic, "/") {
			http.Error(w, `{"code":40001,"http":400,"error":"invalid request"}`, http.StatusBadRequest)
			return
		}
		switch r.Header.Get("Priority") {
		case "", "1", "2", "3", "4", "5", "min", "low", "default", "high", "urgent", "max":
		default:
			http.Error(w, `{"code":40007,"error":"invalid priority"}`, http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.pubs = append(s.pubs, ntfyPub{method: r.Method, topic: topic, auth: r.Header.Get("Authorization"), header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x","event":"message","topic":"`+topic+`"}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *ntfyServer) published() []ntfyPub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ntfyPub(nil), s.pubs...)
}

// TestNotifierToNtfy: the doorbell's invitation reaches alice's ntfy topic
// at urgent priority with the snapshot attached and a click into the app;
// bob's topic gets nothing; the cancel is published as a missed call.
func TestNotifierToNtfy(t *testing.T) {
	srv := newNtfyServer(t)
	rec := newRecorder()
	jpeg := []byte("\xff\xd8\xff\xe0 a jpeg")
	n := NewNtfy(NtfyOptions{
		Targets:  []NtfyTarget{{User: "alice", Server: srv.URL, Topic: "door-alice", Token: "tk_secret"}, {User: "carol", Server: srv.URL, Topic: "door-carol"}},
		AppURL:   "https://door.local:8443",
		Snapshot: func(call string) []byte { return jpeg },
		Observer: rec,
	})
	defer n.Close()
	nf := NewNotifier(NotifierOptions{Ntfy: n, Names: map[string]string{"door": "Front door"}})
	defer nf.Close()
	inv := calling.Message{Type: calling.MsgInvite, Call: "c1", Invite: "i1", Users: []string{"alice", "bob"}, Media: calling.Video, TimeoutMS: 30000}
	nf.Observe("door", "alice", inv, nil, time.Now())
	nf.Observe("door", "alice", inv, nil, time.Now()) // the same invitation twice
	rec.wait(t, 1)
	if _, ok := nf.Ringing("c1", "alice"); !ok {
		t.Fatal("alice's ring is not followed")
	}
	nf.Observe("door", "alice", calling.Message{Type: calling.MsgCancel, Call: "c1", Invite: "i1"}, nil, time.Now())
	rec.wait(t, 1)
	pubs := srv.published()
	if len(pubs) != 2 {
		t.Fatalf("%d publications, want the ring and the missed call", len(pubs))
	}
	ring, missed := pubs[0], pubs[1]
	if ring.method != http.MethodPut || ring.topic != "door-alice" || ring.auth != "Bearer tk_secret" || string(ring.body) != string(jpeg) {
		t.Errorf("ring: %s /%s auth %q body %q", ring.method, ring.topic, ring.auth, ring.body)
	}
	for k, want := range map[string]string{
		"Title": "Front door", "Message": "is calling", "Priority": "urgent", "Filename": "snapshot.jpg",
		"Click": "https://door.local:8443/#call=c1",
	} {
		if got := ring.header.Get(k); got != want {
			t.Errorf("ring %s: %q, want %q", k, got, want)
		}
	}
	if !strings.HasPrefix(ring.header.Get("Actions"), "view, Answer, https://door.local:8443/#call=c1&answer=1") {
		t.Errorf("ring Actions %q", ring.header.Get("Actions"))
	}
	if missed.header.Get("Title") != "Missed call from Front door" || missed.header.Get("Priority") != "default" {
		t.Errorf("missed call: %v", missed.header)
	}
	if _, ok := nf.Ringing("c1", "alice"); ok {
		t.Error("the cancelled ring is still followed")
	}
}

// TestNotifierEnds: answers, declines and a ring group's cancel end the
// ring with their reason, and a ring nothing ends is declared missed after
// its timeout.
func TestNotifierEnds(t *testing.T) {
	nf := NewNotifier(NotifierOptions{})
	defer nf.Close()
	ringing := func(call, user string) bool { _, ok := nf.Ringing(call, user); return ok }
	inv := calling.Message{Type: calling.MsgInvite, Call: "c1", Invite: "i1", Users: []string{"alice", "bob", "carol"}, TimeoutMS: 30000}
	nf.Observe("door", "", inv, nil, time.Now()) // to a group: every invitee but the caller
	for _, u := range []string{"alice", "bob", "carol"} {
		if !ringing("c1", u) {
			t.Fatalf("%s not ringing", u)
		}
	}
	nf.Observe("alice", "door", calling.Message{Type: calling.MsgAccept, Call: "c1", Invite: "i1"}, nil, time.Now())
	nf.Observe("bob", "door", calling.Message{Type: calling.MsgReject, Call: "c1", Invite: "i1", Reason: calling.ReasonDeclined}, nil, time.Now())
	if ringing("c1", "alice") || ringing("c1", "bob") || !ringing("c1", "carol") {
		t.Fatal("answer or decline did not end only its user's ring")
	}
	nf.Observe("door", "carol", calling.Message{Type: calling.MsgCancel, Call: "c1", Invite: "i1", Reason: calling.ReasonElsewhere}, nil, time.Now())
	if ringing("c1", "carol") {
		t.Fatal("the ring group's cancel did not end carol's ring")
	}
	// A ring that nothing ends (the caller vanished) is missed after its
	// timeout and grace.
	nf.Observe("door", "dave", calling.Message{Type: calling.MsgInvite, Call: "c2", Invite: "i2", Users: []string{"dave"}, TimeoutMS: 1}, nil, time.Now())
	deadline := time.Now().Add(ringGrace + 5*time.Second)
	for ringing("c2", "dave") {
		if time.Now().After(deadline) {
			t.Fatal("an abandoned ring is followed forever")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
