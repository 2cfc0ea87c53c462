// Package agenttest has a fake agent.Transport for tests of the agent and
// of the code that drives it: it records what is sent, can fail every send,
// and can hold sends back like a broker that never acknowledges.
package agenttest

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
)

// Sent is one message handed to the Transport.
type Sent struct {
	To, Group string
	Msg       calling.Message
}

func (s Sent) String() string {
	to := s.To
	if s.Group != "" {
		to = "group " + s.Group
	}
	return fmt.Sprintf("%s %s", to, s.Msg.Type)
}

// Transport is a fake agent.Transport. The zero value records every
// message and succeeds.
type Transport struct {
	mu      sync.Mutex
	sent    []Sent
	err     error
	held    chan struct{} // non-nil: sends wait until it is closed
	waiting int           // sends waiting on held
	changed chan struct{}
}

var _ agent.Transport = (*Transport)(nil)

// Fail makes every later send fail with err (nil: succeed again).
func (t *Transport) Fail(err error) {
	t.mu.Lock()
	t.err = err
	t.mu.Unlock()
}

// Hold makes sends wait, unacknowledged, until Release.
func (t *Transport) Hold() {
	t.mu.Lock()
	if t.held == nil {
		t.held = make(chan struct{})
	}
	t.mu.Unlock()
}

// Release lets held sends complete.
func (t *Transport) Release() {
	t.mu.Lock()
	if t.held != nil {
		close(t.held)
		t.held = nil
	}
	t.mu.Unlock()
}

// Waiting is the number of sends held back now.
func (t *Transport) Waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waiting
}

// Send implements agent.Transport.
func (t *Transport) Send(to string, payload []byte) error { return t.record(to, "", payload) }

// SendGroup implements agent.Transport.
func (t *Transport) SendGroup(group string, payload []byte) error {
	return t.record("", group, payload)
}

func (t *Transport) record(to, group string, payload []byte) error {
	msg, err := calling.Decode(payload)
	if err != nil {
		return fmt.Errorf("agenttest: the agent sent a bad message: %w", err)
	}
	t.mu.Lock()
	if held := t.held; held != nil {
		t.waiting++
		t.notifyLocked()
		t.mu.Unlock()
		<-held
		t.mu.Lock()
		t.waiting--
	}
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	t.sent = append(t.sent, Sent{To: to, Group: group, Msg: msg})
	t.notifyLocked()
	return nil
}

func (t *Transport) notifyLocked() {
	if t.changed != nil {
		close(t.changed)
	}
	t.changed = make(chan struct{})
}

// Sent returns what was sent so far.
func (t *Transport) Sent() []Sent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Sent(nil), t.sent...)
}

// Types lists the types of the messages sent so far, space-separated.
func (t *Transport) Types() string {
	var b []string
	for _, s := range t.Sent() {
		b = append(b, s.Msg.Type.String())
	}
	return strings.Join(b, " ")
}

// WaitFor waits until ok holds of the messages sent (or sends waiting),
// for at most limit of real time, and reports whether it did.
func (t *Transport) WaitFor(ok func(t *Transport) bool, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		ch := t.changed
		t.mu.Unlock()
		if ok(t) {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return ok(t)
		}
	}
}
