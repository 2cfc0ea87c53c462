// Shared helpers of the browser suite. The Go test (web/e2e_test.go) starts
// intercomd and a control server and passes their addresses in the
// environment: INTERCOMD_URL (the app), INTERCOMD_CONTROL (press the
// doorbell, relay pulses, device state, tokens), CHROMIUM, FIREFOX,
// SCREENSHOT_DIR.
import { chromium } from "playwright-core";
import puppeteer from "puppeteer-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const APP = process.env.INTERCOMD_URL;
// A phone's screen in CSS pixels (an iPhone 12 to 15).
export const PHONE = { width: 390, height: 844 };
const CONTROL = process.env.INTERCOMD_CONTROL;
if (!APP || !CONTROL) {
  throw new Error("run through `go test ./web -run TestBrowser` (INTERCOMD_URL and INTERCOMD_CONTROL are unset)");
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--ignore-certificate-errors", "--autoplay-policy=no-user-gesture-required",
    ],
  });
}

// launchFirefox starts Firefox with a fake camera and microphone granted
// without asking, autoplay allowed, and ICE over loopback (where the suite's
// device is).
export function launchFirefox() {
  return puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
    headless: true,
    acceptInsecureCerts: true,
    protocolTimeout: 60000,
    extraPrefsFirefox: {
      "media.navigator.streams.fake": true,
      "media.navigator.permission.disabled": true,
      "media.autoplay.default": 0,
      "media.autoplay.blocking_policy": 0,
      "media.peerconnection.ice.loopback": true,
      "media.peerconnection.ice.obfuscate_host_addresses": false,
      "dom.vibrator.enabled": true,
    },
  });
}

// firefoxPhone opens the app in a fresh context (its own storage) at a phone's
// size and signs user in with a sign-in link.
export async function firefoxPhone(browser, user, { waitOnline = true } = {}) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport(PHONE);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${APP}#token=${encodeURIComponent(await token(user))}`);
  if (waitOnline) await page.waitForFunction(() => globalThis.intercomd && globalThis.intercomd.linkUp, { timeout: 30000 });
  return { ctx, page, user, errors };
}

// openTrusting opens a phone's browser that trusts the device's root and
// nothing else: no certificate error ignored, the root in the NSS database
// of HOME home (web/e2e_trust_test.go puts it there), a persistent profile
// (incognito windows install no apps), the device's name (<host>.local,
// as a phone finds it by mDNS) on loopback.
export async function openTrusting(home) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "intercomd-profile-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--host-resolver-rules=MAP * 127.0.0.1",
      // A camera and microphone to answer with; nothing about certificates.
      "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
      "--autoplay-policy=no-user-gesture-required",
    ],
    env: { ...process.env, HOME: home },
    viewport: PHONE,
  });
  return { ctx, close: async () => { await ctx.close(); fs.rmSync(dir, { recursive: true, force: true }); } };
}

export async function control(what, init) {
  const r = await fetch(CONTROL + what, init);
  if (!r.ok) throw new Error(`control ${what}: ${r.status} ${await r.text()}`);
  return r.text();
}

export const token = (user, ttl = "1h") => control(`token?user=${user}&ttl=${ttl}`);
export const press = () => control("press", { method: "POST" });
export const relayPulses = async () => JSON.parse(await control("relay")).on;
export const deviceState = () => control("state");

// until polls fn (sync or async) until it returns a truthy value.
export async function until(what, fn, timeout = 15000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// phone opens the app in a fresh browser context (its own storage) and
// signs in with the given token (a fresh valid one for user by default).
// multiDevice, when given, replaces the device's calling.multi_device in
// the configuration the app loads (config.json).
export async function phone(browser, user, { tok, waitOnline = true, setup, multiDevice } = {}) {
  const ctx = await browser.newContext({
    ignoreHTTPSErrors: true, viewport: PHONE, deviceScaleFactor: 1,
    // A service worker's fetches would pass the route below by.
    serviceWorkers: multiDevice === undefined ? "allow" : "block",
  });
  if (setup) await setup(ctx);
  if (multiDevice !== undefined) {
    await ctx.route("**/config.json", async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, json: { ...(await response.json()), multi_device: multiDevice } });
    });
  }
  // Record the vibrations the app asks for.
  await ctx.addInitScript(() => {
    globalThis.vibrations = [];
    if (!navigator.vibrate) return;
    const real = navigator.vibrate.bind(navigator);
    navigator.vibrate = (pattern) => { globalThis.vibrations.push(pattern); return real(pattern); };
  });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  tok = tok ?? await token(user);
  await page.goto(`${APP}#token=${encodeURIComponent(tok)}`);
  if (waitOnline) {
    await page.waitForFunction(() => globalThis.intercomd && globalThis.intercomd.linkUp, null, { timeout: 20000 });
  }
  return { ctx, page, user, errors };
}

export const appState = (p) => p.page.evaluate(() => globalThis.intercomd.state);
export const bannerText = (p) => p.page.evaluate(() => {
  const b = document.getElementById("banner");
  return b.hidden ? "" : b.textContent;
});

export async function waitState(p, state, timeout = 15000) {
  await p.page.waitForFunction((s) => globalThis.intercomd.state === s, state, { timeout });
}

export async function waitBanner(p, re, timeout = 15000) {
  return until(`banner ${re} on ${p.user}`, async () => {
    const t = await bannerText(p);
    return re.test(t) ? t : null;
  }, timeout);
}

// callButton is the Video or Audio button of a directory entry.
export const callButton = (p, user, kind = "video") => p.page.locator(`#directory li[data-user="${user}"] .call-${kind}`);

// screenshot saves the page as <name>-light.png and <name>-dark.png in
// SCREENSHOT_DIR (git-ignored web/e2e/screenshots by default).
export async function screenshot(p, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  for (const scheme of ["light", "dark"]) {
    await p.page.emulateMedia({ colorScheme: scheme });
    await p.page.screenshot({ path: path.join(dir, `${name}-${scheme}.png`), animations: "disabled" });
  }
  await p.page.emulateMedia({ colorScheme: "light" });
}

// box is an element's size and place on the screen.
export const box = (p, sel) => p.page.locator(sel).boundingBox();

// openMenu opens the settings menu of the home screen.
export async function openMenu(p) {
  await p.page.click("#menu-open");
  await p.page.locator("#menu").waitFor({ state: "visible" });
}

export async function waitDeviceIdle(timeout = 40000) {
  // A phone closed mid-call is noticed by the device through its media
  // (ICE disconnected, then the restart timeout): up to about 30 s.
  await until("device idle", async () => (await deviceState()) === "idle", timeout);
}

// pendingMedia is the message of a test that needs the device's media when
// the device answers with signaling-only SDP.
export const PENDING_MEDIA = "PENDING: the device answered with signaling-only SDP: intercomd's media layer " +
  "is not wired into the daemon yet (endpoint.Options.Media); video and audio cannot be checked";
