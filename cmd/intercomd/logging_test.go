package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/intercomd/intercomd/config"
)

// Under systemd the journal adds timestamps and takes the level from a
// "<N>" prefix; elsewhere lines carry both themselves.
func TestLoggerJournalFormat(t *testing.T) {
	var buf bytes.Buffer
	journal := func(k string) string {
		if k == "JOURNAL_STREAM" {
			return "8:1234"
		}
		return ""
	}
	log := newLogger(&buf, config.Log{Level: config.LogDebug, Format: config.LogFormatAuto}, journal)
	log.Error("relay stuck", "line", "GPIO22")
	log.Warn("broker gone")
	log.Info("ready")
	log.With("component", "gpio").Debug("edge")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"<3>msg=\"relay stuck\" line=GPIO22", "<4>msg=\"broker gone\"", "<6>msg=ready", "<7>msg=edge component=gpio"}
	if len(lines) != len(want) {
		t.Fatalf("got %q", lines)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q (no timestamp, priority prefix)", i, lines[i], w)
		}
	}
	buf.Reset()
	plain := newLogger(&buf, config.Log{Level: config.LogInfo}, func(string) string { return "" })
	plain.Info("ready")
	if !strings.Contains(buf.String(), "time=") || !strings.Contains(buf.String(), "level=INFO") {
		t.Errorf("outside systemd lines carry time and level: %q", buf.String())
	}
}

// The process's logger cuts long values and rate-limits a client's
// warnings, and never drops the door's records.
func TestLoggerLimitsClients(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, config.Log{Level: config.LogInfo}, func(string) string { return "" })
	long := strings.Repeat("T", 60<<10)
	for range 1000 {
		log.Warn("message dropped", "from", "mallory", "err", "unknown message type \""+long+"\"")
		log.Info("door opened", "by", "alice")
	}
	if n := strings.Count(buf.String(), "door opened"); n != 1000 {
		t.Errorf("%d of 1000 door openings logged", n)
	}
	if n := strings.Count(buf.String(), "from=mallory"); n > 20 {
		t.Errorf("%d of mallory's 1000 warnings logged", n)
	}
	if buf.Len() > 200<<10 {
		t.Errorf("%d bytes of log for 1000 warnings of 60 KB", buf.Len())
	}
}
