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
