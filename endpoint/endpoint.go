// Package endpoint puts a calling agent on MQTT signaling: it dials the
// broker with mqttsig, logs the agent in once the link is up, feeds it every
// inbound message and presence change, and leaves cleanly (hang up, presence
// offline, disconnect) on Close. The daemon, the softphone and the
// integration tests all use it, so they share one code path.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/intercomd/intercomd/agent"
	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/internal/clock"
	"github.com/intercomd/intercomd/internal/ids"
	"github.com/intercomd/intercomd/mqttsig"
)

// Options configure an Endpoint.
type Options struct {
	MQTT    mqttsig.Options
	Calling calling.Config
	// Media builds the media layer given the agent's Post; nil uses
	// agent.SignalMedia (signaling only).
	Media  func(post func(calling.Input)) agent.Media
	Logger *slog.Logger
	// OnDoor is called on the agent's loop when an authorised party opens
	// the door; it must not block.
	OnDoor func(by string)
	// OnEffect is passed to the agent (agent.Options.OnEffect).
	OnEffect func(calling.Effect)
	// OnEvent is passed to the agent (agent.Options.OnEvent).
	OnEvent func(calling.Event) []calling.Input
	// OnLink is called on the agent's loop when the signaling link goes
	// up or down; it must not block.
	OnLink func(up bool)
	// Clock is passed to the agent (agent.Options.Clock).
	Clock clock.Clock
}

// Endpoint is a logged-in (or logging-in) calling agent on MQTT.
type Endpoint struct {
	*agent.Agent
	client *mqttsig.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kicked chan struct{}
	ready  chan struct{} // closed once logged in
	once   sync.Once

	mu     sync.Mutex
	online map[string]string // user -> session of its latest online presence
}

// Start dials the broker (retrying in the background) and starts the agent.
// It returns at once; the agent logs in when the link first comes up.
func Start(ctx context.Context, opts Options) (*Endpoint, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Calling.Session == "" {
		opts.Calling.Session = ids.New()
	}
	opts.MQTT.User = opts.Calling.User
	opts.MQTT.Session = opts.Calling.Session
	if opts.MQTT.Logger == nil {
		opts.MQTT.Logger = opts.Logger
	}
	client, err := mqttsig.Dial(ctx, opts.MQTT)
	if err != nil {
		return nil, fmt.Errorf("dial signaling: %w", err)
	}
	e := &Endpoint{client: client, kicked: make(chan struct{}), ready: make(chan struct{}), online: map[string]string{}}
	var a *agent.Agent
	aopts := agent.Options{
		Calling:   opts.Calling,
		Transport: client,
		Logger:    opts.Logger,
		OnDoor:    opts.OnDoor,
		OnEffect:  opts.OnEffect,
		OnEvent:   opts.OnEvent,
		Clock:     opts.Clock,
		OnDisconnect: func() {
			e.once.Do(func() { close(e.kicked) })
		},
	}
	if opts.Media != nil {
		aopts.Media = opts.Media(func(in calling.Input) { a.Post(in) })
	}
	a = agent.New(aopts)
	e.Agent = a
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		_ = a.Run(runCtx) // returns when runCtx ends
	}()
	go func() {
		defer e.wg.Done()
		e.pump(runCtx, opts)
	}()
	return e, nil
}

// pump moves inbound messages and link changes into the agent.
func (e *Endpoint) pump(ctx context.Context, opts Options) {
	log := opts.Logger
	loggedIn := false
	link := func(up bool) {
		e.Post(calling.LinkChanged{Up: up})
		if opts.OnLink != nil {
			e.Apply(func(calling.State) []calling.Input {
				opts.OnLink(up)
				return nil
			})
		}
	}
	status, inbound := e.client.Status(), e.client.Inbound()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kicked:
			log.Warn("logged in elsewhere: leaving signaling")
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = e.client.CloseReplaced(cctx) // the other login is online
			cancel()
			link(false) // for good: this login is over
			<-ctx.Done()
			return
		case up, ok := <-status:
			if !ok { // the client was closed: the link is down for good
				status, inbound = nil, nil
				link(false)
				continue
			}
			link(up)
			if up && !loggedIn {
				loggedIn = true
				if err := e.Do(ctx, calling.Login{}); err != nil {
					log.Warn("login", "err", err)
				}
				close(e.ready)
			}
		case in, ok := <-inbound:
			if !ok {
				inbound = nil
				continue
			}
			switch in.Kind {
			case mqttsig.Presence:
				p, err := mqttsig.ParsePresence(in.Payload)
				if err != nil {
					log.Debug("presence dropped", "user", in.From, "err", err)
					continue
				}
				up := p.State == mqttsig.PresenceOnline
				e.mu.Lock()
				current, known := e.online[in.From]
				switch {
				case up:
					e.online[in.From] = p.Session
				case known && p.Session != "" && p.Session != current:
					// The last will or goodbye of an older session of a
					// user who is online elsewhere: not news.
					e.mu.Unlock()
					continue
				default:
					delete(e.online, in.From)
				}
				e.mu.Unlock()
				e.Post(calling.Presence{User: in.From, Online: up})
			case mqttsig.Direct, mqttsig.Group:
				e.Deliver(in.From, in.Group, in.Payload)
			}
		}
	}
}

// Online returns the users whose presence says online, sorted.
func (e *Endpoint) Online() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var us []string
	for u := range e.online {
		us = append(us, u)
	}
	sort.Strings(us)
	return us
}

// Client returns the signaling client.
func (e *Endpoint) Client() *mqttsig.Client { return e.client }

// Close hangs up any call (the peers are told), logs out, publishes
// presence offline and disconnects, within ctx's deadline.
func (e *Endpoint) Close(ctx context.Context) error {
	var errs []error
	if e.State() != calling.Idle {
		if err := e.Do(ctx, calling.Hangup{}); err != nil && !errors.Is(err, calling.ErrNoCall) {
			errs = append(errs, err)
		}
	}
	e.cancel()
	e.wg.Wait()
	if err := e.client.Close(ctx); err != nil && !errors.Is(err, mqttsig.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WaitReady waits until the endpoint is logged in (its link came up once).
func (e *Endpoint) WaitReady(ctx context.Context) error {
	select {
	case <-e.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for login: %w", ctx.Err())
	}
}

// Kicked is closed when this login was replaced by another login of the
// same user.
func (e *Endpoint) Kicked() <-chan struct{} { return e.kicked }
