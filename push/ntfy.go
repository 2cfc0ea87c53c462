package push

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NtfyTarget is where one user's rings are published: an ntfy server (a
// self-hosted one or https://ntfy.sh), a topic and, for a server with
// access control, a token.
type NtfyTarget struct {
	User   string
	Server string
	Topic  string
	Token  string
}

// NtfyOptions configures an Ntfy publisher.
type NtfyOptions struct {
	Targets []NtfyTarget
	// AppURL is the web app's address, for the notification's click action.
	AppURL string
	// Snapshot returns the JPEG of a call's snapshot, or nil.
	Snapshot func(call string) []byte
	Client   *http.Client
	Timeout  time.Duration // per request, default 10 s
	Logger   *slog.Logger
	Observer Observer
	Now      func() time.Time
}

// Ntfy publishes rings to ntfy topics (https://docs.ntfy.sh/publish/):
// priority urgent, a click action into the app, the snapshot attached.
type Ntfy struct {
	opts NtfyOptions
	worker
}

// NewNtfy starts a publisher; Close stops it.
func NewNtfy(opts NtfyOptions) *Ntfy {
	if opts.Client == nil {
		opts.Client = newClient(2)
	}
	n := &Ntfy{worker: newWorker(&opts.Timeout, &opts.Now, opts.Logger, opts.Observer, 2, 32)}
	n.opts = opts
	return n
}

// Close waits for the publications under way.
func (n *Ntfy) Close() { n.pool.close() }

// Publish sends p to every ntfy target of user, off the caller's goroutine.
// Ends of a call are published only when it was missed.
func (n *Ntfy) Publish(user string, p Payload, since time.Time) {
	if p.Kind == KindEnd && p.Reason != EndMissed {
		return
	}
	for _, t := range n.opts.Targets {
		if t.User != user {
			continue
		}
		if !n.pool.submit(func(ctx context.Context) { n.publish(ctx, t, p, since) }) {
			n.obs.Failure(ChannelNtfy, ReasonQueueFull)
		}
	}
}

func (n *Ntfy) publish(ctx context.Context, t NtfyTarget, p Payload, since time.Time) {
	origin := originOf(t.Server)
	if !n.limit.allow(origin, n.opts.Now()) {
		n.obs.Failure(ChannelNtfy, ReasonBackoff)
		return
	}
	var jpeg []byte
	if p.Kind == KindRing && n.opts.Snapshot != nil {
		jpeg = n.opts.Snapshot(p.Call)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	topicURL := strings.TrimRight(t.Server, "/") + "/" + url.PathEscape(t.Topic)
	// With a snapshot the body is the picture (an attachment) and the text
	// goes in the Message header; without one the body is the text.
	method, body := http.MethodPost, []byte(p.Body)
	if jpeg != nil {
		method, body = http.MethodPut, jpeg
	}
	req, err := http.NewRequestWithContext(ctx, method, topicURL, bytes.NewReader(body))
	if err != nil {
		n.obs.Failure(ChannelNtfy, ReasonRefused)
		n.limit.failed(ChannelNtfy, origin, ReasonRefused, err.Error(), 0, n.opts.Now())
		return
	}
	h := req.Header
	h.Set("Title", p.Title)
	if jpeg != nil {
		h.Set("Filename", "snapshot.jpg")
		h.Set("Message", p.Body)
	}
	if p.Kind == KindRing {
		h.Set("Priority", "urgent")
		h.Set("Tags", "bell")
	} else {
		h.Set("Priority", "default")
		h.Set("Tags", "telephone_receiver")
	}
	if n.opts.AppURL != "" {
		click := strings.TrimRight(n.opts.AppURL, "/") + "/#call=" + url.QueryEscape(p.Call)
		h.Set("Click", click)
		if p.Kind == KindRing {
			h.Set("Actions", "view, Answer, "+click+"&answer=1, clear=true")
		}
	}
	if t.Token != "" {
		h.Set("Authorization", "Bearer "+t.Token)
	}
	n.obs.Attempt(ChannelNtfy)
	resp, err := n.opts.Client.Do(req)
	reason, detail, retry := classify(ctx, resp, err, n.opts.Now())
	if reason == "" {
		n.obs.Accepted(ChannelNtfy, n.opts.Now().Sub(since))
		n.limit.succeeded(ChannelNtfy, origin)
		return
	}
	if reason == ReasonGone || reason == ReasonBadKey {
		reason = ReasonRefused // a topic is not dropped: the owner configured it
	}
	// The back-off and the log line first: whoever the observer tells
	// (metrics, a test) sees the failure fully recorded.
	n.limit.failed(ChannelNtfy, origin, reason, detail, retry, n.opts.Now())
	n.obs.Failure(ChannelNtfy, reason)
}
