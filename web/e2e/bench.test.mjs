// Benchmark, started by BenchmarkCallToVideo (web/e2e_test.go) once per
// browser (BENCH_BROWSER: chromium, or firefox): over BENCH_CALLS calls
// each,
//   - call to video: the time from a tap on the door's video call button to
//     the door's first video frame on screen (and to the call in progress);
//   - ring to app: the time from the doorbell's press to the app ringing
//     (its ringing screen up).
// The figures go to BENCH_OUT as JSON.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import {
  launch, phone, launchFirefox, firefoxPhone, press, until, waitDeviceIdle,
} from "./helpers.mjs";

const firefox = process.env.BENCH_BROWSER === "firefox";
const calls = Number(process.env.BENCH_CALLS || 20);
let browser;
before(async () => { browser = firefox ? await launchFirefox() : await launch(); });
after(async () => { await browser?.close(); });

const result = { browser: firefox ? "firefox" : "chromium" };

// Both drivers: evaluate in the page, and a tap as the page sees one.
const open = (user) => (firefox ? firefoxPhone(browser, user) : phone(browser, user));
const tap = (p, sel) => p.page.evaluate((s) => document.querySelector(s).click(), sel);
const waitFor = (p, fn, timeout = 20000) =>
  (firefox ? p.page.waitForFunction(fn, { timeout }) : p.page.waitForFunction(fn, null, { timeout }));
const state = (p) => p.page.evaluate(() => globalThis.intercomd.state);

function percentiles(times) {
  const t = [...times].sort((a, b) => a - b);
  const pct = (p) => t[Math.min(t.length - 1, Math.floor((p / 100) * t.length))];
  return { n: t.length, p50_ms: pct(50), p90_ms: pct(90), min_ms: t[0], max_ms: t[t.length - 1] };
}

test("call to video", async (t) => {
  const alice = await open("alice");
  const video = [];
  const connected = [];
  try {
    await until("the door online", () => alice.page.evaluate(() =>
      document.querySelector('#directory li[data-user="door"] .dot[data-online="true"]') !== null));
    // The door sends H.264, or VP8 to a browser without H.264.
    const canVideo = await alice.page.evaluate(() =>
      RTCRtpReceiver.getCapabilities("video").codecs.some((c) => /h264|vp8/i.test(c.mimeType)));
    for (let i = 0; i < calls; i++) {
      await waitDeviceIdle();
      await alice.page.evaluate(() => {
        // Stamp the tap and the first frame in the page's own clock.
        const v = document.getElementById("remote-video");
        globalThis.benchFrame = new Promise((resolve) => {
          const poll = () => (v.videoWidth > 0 && v.currentTime > 0
            ? (v.requestVideoFrameCallback ? v.requestVideoFrameCallback(() => resolve(performance.now())) : resolve(performance.now()))
            : setTimeout(poll, 5));
          poll();
        });
        globalThis.benchConnected = new Promise((resolve) => {
          const poll = () => (globalThis.intercomd.state === "in_call" ? resolve(performance.now()) : setTimeout(poll, 2));
          poll();
        });
        // On the document: the directory's buttons are redrawn on every change.
        document.addEventListener("click", (ev) => {
          if (ev.target.closest('#directory li[data-user="door"] .call-video')) globalThis.benchPress = performance.now();
        }, { once: true, capture: true });
      });
      await tap(alice, '#directory li[data-user="door"] .call-video');
      await waitFor(alice, () => globalThis.intercomd.state === "in_call");
      connected.push(await alice.page.evaluate(async () => (await globalThis.benchConnected) - globalThis.benchPress));
      if (canVideo) {
        const ms = await alice.page.evaluate(async () => (await globalThis.benchFrame) - globalThis.benchPress);
        assert.ok(Number.isFinite(ms) && ms > 0, `call ${i}: ${ms} ms`);
        video.push(ms);
      }
      await tap(alice, "#hangup");
      await until("alice idle", async () => (await state(alice)) === "idle");
    }
    if (!canVideo) t.diagnostic(`${result.browser} has neither H.264 nor VP8: no video to time, only the call's connection`);
  } finally {
    await alice.ctx.close();
  }
  result.video = video.length ? percentiles(video) : null;
  result.connected = percentiles(connected);
  t.diagnostic(JSON.stringify({ video: result.video, connected: result.connected }));
  assert.equal(connected.length, calls);
});

test("ring to app", async (t) => {
  const alice = await open("alice");
  const times = [];
  try {
    await until("the door online", () => alice.page.evaluate(() =>
      document.querySelector('#directory li[data-user="door"] .dot[data-online="true"]') !== null));
    for (let i = 0; i < calls; i++) {
      await waitDeviceIdle();
      // The moment the ringing screen comes up, in wall-clock time (the
      // page and this process share the machine's clock).
      await alice.page.evaluate(() => {
        globalThis.benchRinging = new Promise((resolve) => {
          const screen = document.getElementById("incoming-screen");
          const obs = new MutationObserver(() => {
            if (!screen.hidden) {
              obs.disconnect();
              resolve(performance.timeOrigin + performance.now());
            }
          });
          obs.observe(screen, { attributes: true, attributeFilter: ["hidden"] });
        });
      });
      const pressed = Date.now();
      await press();
      const rang = await alice.page.evaluate(() => globalThis.benchRinging);
      times.push(rang - pressed);
      await waitFor(alice, () => globalThis.intercomd.state === "ringing");
      await tap(alice, "#reject");
      await until("alice idle", async () => (await state(alice)) === "idle");
    }
  } finally {
    await alice.ctx.close();
  }
  result.ring = percentiles(times);
  t.diagnostic(JSON.stringify({ ring: result.ring }));
  assert.equal(times.length, calls);
  if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(result));
});
