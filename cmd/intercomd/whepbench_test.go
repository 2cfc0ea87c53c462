package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/intercomd/intercomd/calling"
	"github.com/intercomd/intercomd/media/whep/wheptest"
	"github.com/intercomd/intercomd/push/pushtest"
)

// BenchmarkDaemonWHEP compares the CPU of the intercomd process (a child,
// built from this package, the configuration of BenchmarkDaemonMedia:
// the test pattern at 640x480, 30 fps, 1 Mbit/s, with sensor-like noise,
// plus whep.enabled) in three windows of the same length, one after the
// other in the same process:
//
//  1. call: a softphone in a 1-to-1 video call rung by the doorbell;
//  2. go2rtc: go2rtc pulls the stream over WHEP, and ffmpeg reads go2rtc's
//     RTSP restream copying it (no decoding), as Frigate's recorder does;
//  3. pion: a pion WHEP client in the benchmark's process.
//
// The viewers run outside the daemon, so only the daemon's side is
// counted: capture, encoding, packetization, SRTP, and for the call the
// signaling and the phone's audio mixed to the speaker.
//
// Run: go test -run '^$' -bench DaemonWHEP -benchtime 1x ./cmd/intercomd/
func BenchmarkDaemonWHEP(b *testing.B) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		pushtest.Missing(b, "ffmpeg")
	}
	requireGo2RTC(b)
	bin := buildIntercomd(b)
	tck := clockTicks(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for range b.N {
		dir := benchDir(b)
		f, err := os.OpenFile(filepath.Join(dir.path, "intercomd.yaml"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.WriteString(f, "whep:\n  enabled: true\n  users: [frigate]\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		dmn := startChild(b, dir, bin, []string{"run", "--config", filepath.Join(dir.path, "intercomd.yaml")}, "")
		dmn.waitErr(b, ctx, "intercomd ready")
		state := filepath.Join(dir.path, "state")
		endpoint, hc, ca := whepEndpoint(b, dmn.stderr.String(), state)
		tok := (&daemonUnderTest{dir: dir.path}).token(b, "frigate")

		// 1. A call.
		alice := startViewer(b, ctx, dir, "alice", nil)
		time.Sleep(500 * time.Millisecond) // the daemon sees alice's presence
		if _, err := io.WriteString(dmn.stdin, "\n"); err != nil {
			b.Fatal(err)
		}
		alice.waitFrames(b, ctx, dmn)
		time.Sleep(benchWarmup)
		call := sampleProc(b, dmn.pid(), tck, benchWindow)
		hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
		if err := alice.ep.Do(hctx, calling.Hangup{}); err != nil {
			b.Fatal(err)
		}
		hcancel()
		alice.waitState(b, ctx, calling.Idle)

		// 2. go2rtc, read by ffmpeg.
		rtsp := startGo2RTC(b, endpoint, tok, ca)
		ff := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", rtsp, "-c", "copy", "-f", "null", "-")
		if err := ff.Start(); err != nil {
			b.Fatal(err)
		}
		dmn.waitErr(b, ctx, "whep viewer connected")
		time.Sleep(benchWarmup)
		g2 := sampleProc(b, dmn.pid(), tck, benchWindow)
		_ = ff.Process.Kill()
		_ = ff.Wait()

		// 3. A pion WHEP client.
		v, err := wheptest.Dial(ctx, endpoint, wheptest.Options{HTTP: hc, Token: tok, Loopback: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := v.FirstKeyFrame(ctx); err != nil {
			b.Fatal(err)
		}
		time.Sleep(benchWarmup)
		pion := sampleProc(b, dmn.pid(), tck, benchWindow)
		v.Close()
		dmn.stop(b)

		b.Logf("intercomd, 1-to-1 call: %.1f%% of a core, RSS max %.1f MB; load %s", call.pct, call.rssMB, call.load)
		b.Logf("intercomd, go2rtc pulling over WHEP: %.1f%% of a core, RSS max %.1f MB; load %s", g2.pct, g2.rssMB, g2.load)
		b.Logf("intercomd, pion WHEP viewer: %.1f%% of a core, RSS max %.1f MB; load %s", pion.pct, pion.rssMB, pion.load)
		b.ReportMetric(call.pct, "call-cpu%")
		b.ReportMetric(g2.pct, "go2rtc-cpu%")
		b.ReportMetric(pion.pct, "pion-cpu%")
		b.ReportMetric(g2.pct/call.pct, "go2rtc/call")
	}
}
