// Benchmark, started by BenchmarkCallToVideo (web/e2e_test.go): the time
// from pressing Call on the door's entry to the door's first video frame on
// screen, over BENCH_CALLS calls; the figures go to BENCH_OUT as JSON.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { launch, phone, callButton, waitState, waitDeviceIdle, PENDING_MEDIA } from "./helpers.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test("call to video", async (t) => {
  const calls = Number(process.env.BENCH_CALLS || 20);
  const alice = await phone(browser, "alice");
  const times = [];
  const connects = [];
  try {
    for (let i = 0; i < calls; i++) {
      await waitDeviceIdle();
      await alice.page.evaluate(() => {
        // Stamp the press and the first frame in the page's own clock.
        const v = document.getElementById("remote-video");
        globalThis.benchFrame = new Promise((resolve) => {
          const poll = () => (v.videoWidth > 0 && v.currentTime > 0
            ? v.requestVideoFrameCallback(() => resolve(performance.now()))
            : setTimeout(poll, 5));
          poll();
        });
        // When media connected (the call is in progress), for the breakdown.
        globalThis.benchConnected = new Promise((resolve) => {
          const poll = () => (globalThis.intercomd.state === "in_call" ? resolve(performance.now()) : setTimeout(poll, 2));
          poll();
        });
        // On the document: the directory's buttons are redrawn on every change.
        document.addEventListener("click", (ev) => {
          if (ev.target.closest('#directory li[data-user="door"] .call-video')) globalThis.benchPress = performance.now();
        }, { once: true, capture: true });
      });
      await callButton(alice, "door").click();
      await waitState(alice, "in_call", 20000);
      if (await alice.page.evaluate(() => globalThis.intercomd.signalOnly)) {
        t.skip(PENDING_MEDIA);
        return;
      }
      const [ms, connectMs] = await alice.page.evaluate(async () => [
        (await globalThis.benchFrame) - globalThis.benchPress,
        (await globalThis.benchConnected) - globalThis.benchPress,
      ]);
      connects.push(connectMs);
      assert.ok(Number.isFinite(ms) && ms > 0, `call ${i}: ${ms} ms`);
      times.push(ms);
      await alice.page.click("#hangup");
      await waitState(alice, "idle");
    }
  } finally {
    await alice.ctx.close();
  }
  times.sort((a, b) => a - b);
  const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  connects.sort((a, b) => a - b);
  const result = {
    calls: times.length, p50_ms: pct(50), p90_ms: pct(90), min_ms: times[0], max_ms: times[times.length - 1],
    connected_p50_ms: connects[Math.floor(connects.length / 2)],
  };
  t.diagnostic(JSON.stringify(result));
  assert.equal(times.length, calls);
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(result));
});
