// The phone web app in Firefox ESR (Debian's firefox-esr, driven by
// puppeteer-core over WebDriver BiDi) against a real intercomd: sign-in,
// calling the door, answering a ring, media both ways checked from
// getStats, opening the door. Started by TestBrowserFirefox
// (web/e2e_test.go).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  APP, PHONE, token, press, relayPulses, until, deviceState, waitDeviceIdle, launchFirefox, firefoxPhone,
} from "./helpers.mjs";
import fs from "node:fs";
import path from "node:path";

let browser;
before(async () => { browser = await launchFirefox(); });
after(async () => { await browser?.close(); });

const state = (p) => p.page.evaluate(() => globalThis.intercomd.state);
const waitState = (p, s, timeout = 20000) =>
  p.page.waitForFunction((want) => globalThis.intercomd.state === want, { timeout }, s);
const visible = (p, sel) => p.page.$eval(sel, (el) => el.checkVisibility());

async function screenshot(p, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await p.page.screenshot({ path: path.join(dir, `${name}.png`) });
}

// media returns what getStats says of p's connections: bytes received and
// sent by kind, the frames decoded and the codec of the video received.
const media = (p) => p.page.evaluate(async () => {
  const out = { in: { audio: 0, video: 0 }, out: { audio: 0, video: 0 }, framesDecoded: 0, videoCodec: "" };
  for (const pc of globalThis.intercomd.peerConnections()) {
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp") {
        out.in[s.kind] += s.bytesReceived || 0;
        if (s.kind === "video") {
          out.framesDecoded += s.framesDecoded || 0;
          if (s.codecId && stats.get(s.codecId)) out.videoCodec = stats.get(s.codecId).mimeType;
        }
      }
      if (s.type === "outbound-rtp") out.out[s.kind] += s.bytesSent || 0;
    });
  }
  return out;
});

// h264 reports whether this Firefox can receive H.264 in WebRTC: only with
// the OpenH264 plugin that Firefox downloads on first run from Cisco (or
// with H.264 hardware through VA-API). Without it the door sends VP8, from
// a second encoder it runs for such phones.
const h264 = (p) => p.page.evaluate(() =>
  RTCRtpReceiver.getCapabilities("video").codecs.some((c) => /h264/i.test(c.mimeType)));

// twoWay waits until media flows both ways, checked from getStats: audio
// both ways, the phone's camera going out, and the door's video coming in
// and decoded, playing at the door's size; in H.264 when this Firefox has
// it, else in VP8.
async function twoWay(t, p, video = "remote-video") {
  const withH264 = await h264(p);
  const m0 = await media(p);
  const m = await until(`${p.user}: media both ways`, async () => {
    const m = await media(p);
    const audio = m.in.audio > m0.in.audio + 2000 && m.out.audio > m0.out.audio + 2000;
    const vid = m.in.video > m0.in.video + 20000 && m.framesDecoded > m0.framesDecoded + 10 &&
      m.out.video > m0.out.video + 20000;
    return audio && vid && m;
  }, 30000);
  const size = await p.page.waitForFunction((id) => {
    const v = document.getElementById(id);
    return v.videoWidth > 0 && [v.videoWidth, v.videoHeight];
  }, { timeout: 20000 }, video).then((h) => h.jsonValue());
  assert.deepEqual(size, [320, 240], `${p.user} sees the door at ${size}`);
  assert.match(m.videoCodec, withH264 ? /h264/i : /vp8/i, `the door's video arrives as ${m.videoCodec}`);
  t.diagnostic(`the door's video: ${m.videoCodec}${withH264 ? "" : " (this Firefox has no H.264: no OpenH264 plugin, which Firefox downloads from Cisco on first run)"}`);
  return m;
}

async function hangUp(p) {
  if ((await state(p)) !== "idle") await p.page.click("#hangup");
  await waitState(p, "idle");
  await waitDeviceIdle();
}

test("firefox: sign-in screen, sign in, sign out", async () => {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport(PHONE);
  await page.goto(APP);
  await page.waitForSelector("#signin-screen:not([hidden])");
  await screenshot({ page }, "signin");
  await page.click("#signin-paste summary");
  await page.type("#token", await token("alice"));
  await page.click("#signin");
  await page.waitForFunction(() => globalThis.intercomd.linkUp, { timeout: 30000 });
  await page.waitForSelector('#directory li[data-user="door"] .dot[data-online="true"]');
  assert.equal(await page.$eval("#status", (e) => e.textContent), "Online");
  await page.click("#menu-open");
  await page.waitForSelector("#menu[open]");
  await page.click("#signout");
  await page.waitForSelector("#signin-screen:not([hidden])");
  assert.equal(await page.evaluate(() => localStorage.getItem("intercomd.token")), null);
  await ctx.close();
});

test("firefox: call the door, media both ways, open the door", async (t) => {
  const alice = await firefoxPhone(browser, "alice");
  try {
    await alice.page.waitForSelector('#directory li[data-user="door"] .dot[data-online="true"]');
    await alice.page.click('#directory li[data-user="door"] .call-video');
    await waitState(alice, "in_call", 30000);
    const m = await twoWay(t, alice);
    t.diagnostic(`getStats: ${JSON.stringify(m)}`);
    const pulses = await relayPulses();
    await alice.page.waitForSelector("#open-door:not([hidden])");
    await screenshot(alice, "call-door");
    await alice.page.click("#open-door");
    await until("relay pulse", async () => (await relayPulses()) > pulses, 10000);
    await alice.page.waitForFunction(() => document.getElementById("door-state").textContent === "Door opened by Alice", { timeout: 10000 });
    await hangUp(alice);
    assert.deepEqual(alice.errors, []);
  } finally {
    await alice.ctx.close();
  }
});

test("firefox: the doorbell rings, the door is seen before answering, answered with media both ways", async (t) => {
  const alice = await firefoxPhone(browser, "alice");
  try {
    await until("the door online for alice", () => alice.page.evaluate(() =>
      document.querySelector('#directory li[data-user="door"] .dot[data-online="true"]') !== null));
    await press();
    await alice.page.waitForSelector("#incoming-screen:not([hidden])", { timeout: 20000 });
    assert.equal(await alice.page.$eval("#incoming-who", (e) => e.textContent), "Front door");
    // Early media: the door's picture (VP8 where Firefox has no H.264)
    // and its sound while ringing.
    const size = await alice.page.waitForFunction(() => {
      const v = document.getElementById("preview-video");
      return v.videoWidth > 0 && [v.videoWidth, v.videoHeight];
    }, { timeout: 20000 }).then((h) => h.jsonValue());
    assert.deepEqual(size, [320, 240]);
    await until("the door's sound while ringing", async () => (await media(alice)).in.audio > 2000, 20000);
    for (const sel of ["#accept", "#reject"]) {
      const b = await alice.page.$eval(sel, (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height, r.bottom]; });
      assert.ok(b[0] >= 64 && b[1] >= 64 && b[2] <= PHONE.height, `${sel}: ${b}`);
    }
    await screenshot(alice, "incoming");
    await alice.page.click("#accept");
    await waitState(alice, "in_call", 30000);
    // The door is in the call once the phone has answered its
    // renegotiation, a signaling round trip after the app.
    await until("the door in the call", async () => (await deviceState()) === "in_call", 20000);
    const m = await twoWay(t, alice);
    t.diagnostic(`getStats: ${JSON.stringify(m)}`);
    assert.ok(await visible(alice, "#call-timer"));
    await screenshot(alice, "call");
    await hangUp(alice);
    assert.deepEqual(alice.errors, []);
  } finally {
    await alice.ctx.close();
  }
});
