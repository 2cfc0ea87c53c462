package push

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// worker is what the Sender and Ntfy share: the options' defaults, the
// pool, the back-off and the observer.
type worker struct {
	log   *slog.Logger
	obs   Observer
	pool  *pool
	limit *limiter
}

// newWorker applies the defaults (a 10 s timeout, time.Now, a discarding
// logger, no observer) and starts the pool.
func newWorker(timeout *time.Duration, now *func() time.Time, log *slog.Logger, obs Observer, workers, queue int) worker {
	if *timeout <= 0 {
		*timeout = 10 * time.Second
	}
	if *now == nil {
		*now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if obs == nil {
		obs = nopObserver{}
	}
	return worker{log: log, obs: obs, pool: newPool(workers, queue, *timeout), limit: newLimiter(log)}
}

// pool runs submitted work on a fixed number of goroutines, with a bounded
// queue: submit never blocks.
type pool struct {
	jobs    chan func(context.Context)
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
	mu      sync.Mutex
	shut    bool
	timeout time.Duration
}

func newPool(workers, queue int, timeout time.Duration) *pool {
	ctx, stop := context.WithCancel(context.Background())
	p := &pool{jobs: make(chan func(context.Context), queue), ctx: ctx, stop: stop, timeout: timeout}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for f := range p.jobs {
				if p.ctx.Err() == nil {
					f(p.ctx)
				}
			}
		}()
	}
	return p
}

// submit queues f; false when the queue is full or the pool closed.
func (p *pool) submit(f func(context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return false
	}
	select {
	case p.jobs <- f:
		return true
	default:
		return false
	}
}

// close stops accepting work, lets what is under way finish for at most
// the request timeout, drops what is still queued and waits for the
// goroutines.
func (p *pool) close() {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return
	}
	p.shut = true
	close(p.jobs)
	p.mu.Unlock()
	t := time.AfterFunc(p.timeout, p.stop)
	p.wg.Wait()
	t.Stop()
	p.stop()
}

// limiter keeps, per push service (or ntfy server), the back-off after
// failures and what was last logged about it.
type limiter struct {
	log   *slog.Logger
	mu    sync.Mutex
	state map[string]*service
}

// service is what is known of one push service.
type service struct {
	fails  int
	until  time.Time // no requests before this
	logged string    // the failure reason last logged
}

func newLimiter(log *slog.Logger) *limiter {
	return &limiter{log: log, state: map[string]*service{}}
}

func (l *limiter) get(origin string) *service {
	s := l.state[origin]
	if s == nil {
		s = &service{}
		l.state[origin] = s
	}
	return s
}

// allow reports whether a request to origin may be made at now.
func (l *limiter) allow(origin string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.get(origin).until.After(now)
}

// succeeded clears origin's back-off, and says once that it works again.
func (l *limiter) succeeded(channel, origin string) {
	l.mu.Lock()
	s := l.get(origin)
	was := s.logged
	s.fails, s.until, s.logged = 0, time.Time{}, ""
	l.mu.Unlock()
	if was != "" {
		l.log.Info("push service accepts pushes again", "channel", channel, "service", origin)
	}
}

// failed records a failure: for reasons that call for it a back-off (1 s,
// doubling to 10 minutes, or the Retry-After asked for, up to an hour), and
// a warning when the reason differs from the last one logged for origin,
// so that a ring every minute with no internet says so once.
func (l *limiter) failed(channel, origin, reason, detail string, retry time.Duration, now time.Time) {
	l.mu.Lock()
	s := l.get(origin)
	switch reason {
	case ReasonRateLimited, ReasonServer, ReasonTimeout, ReasonUnreachable:
		s.fails++
		d := time.Second << min(s.fails-1, 10)
		d = min(d, 10*time.Minute)
		if retry > d {
			d = min(retry, time.Hour)
		}
		s.until = now.Add(d)
		detail += "; next push to this service in " + d.Round(time.Second).String() + " at the earliest"
	}
	same := s.logged == reason
	s.logged = reason
	l.mu.Unlock()
	if !same {
		l.log.Warn("push failed; said once until the reason changes", "channel", channel, "service", origin, "reason", reason, "detail", detail)
	}
}
