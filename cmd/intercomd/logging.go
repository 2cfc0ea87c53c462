package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/intercomd/intercomd/config"
	"github.com/intercomd/intercomd/internal/loglimit"
)

// newLogger builds the one logger of the process. Under systemd (stdout is
// the journal: $JOURNAL_STREAM is set) lines carry no timestamp, since the
// journal adds its own, and start with a "<N>" syslog priority that journald
// turns into the entry's level. What clients send cannot flood it: long
// values are cut and warnings are rate-limited per client (package
// loglimit); records below Warn, the door's included, are never dropped.
func newLogger(w io.Writer, c config.Log, getenv func(string) string) *slog.Logger {
	level := new(slog.LevelVar)
	level.Set(c.Level.Slog())
	return newLoggerLevel(w, c, getenv, level)
}

// newLoggerLevel is newLogger with a level that can change while running
// (SIGHUP).
func newLoggerLevel(w io.Writer, c config.Log, getenv func(string) string, level *slog.LevelVar) *slog.Logger {
	format := c.Format
	journal := getenv("JOURNAL_STREAM") != ""
	if format == config.LogFormatAuto || format == "" {
		format = config.LogFormatText
	}
	opts := &slog.HandlerOptions{Level: level}
	if journal {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		}
	}
	var h slog.Handler
	if format == config.LogFormatJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if journal && c.Format != config.LogFormatJSON {
		h = &priorityHandler{w: w, opts: opts, mu: new(sync.Mutex)}
	}
	return slog.New(loglimit.New(h, loglimit.Options{}))
}

// priorityHandler writes text records prefixed with the sd-daemon syslog
// priority of their level.
type priorityHandler struct {
	w     io.Writer
	opts  *slog.HandlerOptions
	mu    *sync.Mutex
	attrs []slog.Attr
	group string
}

func (h *priorityHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opts.Level.Level()
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	prio := "<6>"
	switch {
	case r.Level >= slog.LevelError:
		prio = "<3>"
	case r.Level >= slog.LevelWarn:
		prio = "<4>"
	case r.Level < slog.LevelInfo:
		prio = "<7>"
	}
	var buf bytes.Buffer
	buf.WriteString(prio)
	var inner slog.Handler = slog.NewTextHandler(&buf, h.opts)
	if len(h.attrs) > 0 {
		inner = inner.WithAttrs(h.attrs)
	}
	if h.group != "" {
		inner = inner.WithGroup(h.group)
	}
	if err := inner.Handle(ctx, r); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf.Bytes())
	return err
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}
