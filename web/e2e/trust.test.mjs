// A phone's browser that trusts the device's certificate authority, and
// nothing else: Chromium without --ignore-certificate-errors, its HOME's NSS
// database holding the root (web/e2e_trust_test.go puts it there). It loads
// the app, registers its service worker and finds it installable; the same
// browser without the root refuses the device.
import { test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import { APP, token, openTrusting as open } from "./helpers.mjs";

test("without the root, the device is refused", async () => {
  const b = await open(process.env.UNTRUSTED_HOME);
  try {
    const page = await b.ctx.newPage();
    await assert.rejects(page.goto(APP), /ERR_CERT_AUTHORITY_INVALID/);
  } finally {
    await b.close();
  }
});

test("trusting only the device's root: app, service worker, installable", async () => {
  const b = await open(process.env.TRUSTED_HOME);
  try {
    const page = await b.ctx.newPage();
    const errors = [];
    page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(m.text()); });
    const tok = await token("alice");
    const resp = await page.goto(`${APP}#token=${encodeURIComponent(tok)}`);
    assert.equal(resp.status(), 200);
    const sec = await resp.securityDetails();
    assert.ok(sec, "no TLS");
    assert.match(sec.issuer, /intercomd .*root/);
    await page.waitForFunction(() => globalThis.intercomd && globalThis.intercomd.linkUp, null, { timeout: 20000 });

    const sw = await page.evaluate(() => Promise.race([
      navigator.serviceWorker.ready.then((r) => r.active && r.active.scriptURL),
      new Promise((_, rej) => setTimeout(() => rej(new Error("navigator.serviceWorker.ready did not resolve in 15 s")), 15000)),
    ]));
    assert.equal(sw, new URL("sw.js", APP).href);
    assert.deepEqual(errors.filter((e) => /service worker|SSL|certificate/i.test(e)), []);

    const cdp = await b.ctx.newCDPSession(page);
    const manifest = await cdp.send("Page.getAppManifest");
    assert.deepEqual(manifest.errors, [], "manifest errors");
    assert.ok(manifest.url.endsWith("/manifest.webmanifest"), manifest.url);
    // Installability needs the service worker to control the page: reload once.
    await page.reload();
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 15000 });
    const inst = await cdp.send("Page.getInstallabilityErrors");
    assert.deepEqual(inst.installabilityErrors, [], "installability errors");

    // The name, under the root's name constraints, as well as the address.
    const byName = new URL(APP);
    const host = os.hostname().toLowerCase();
    byName.hostname = host.includes(".") ? host : `${host}.local`;
    const named = await b.ctx.newPage();
    const r2 = await named.goto(new URL("manifest.webmanifest", byName).href);
    assert.equal(r2.status(), 200, `${byName.hostname}: ${r2.status()}`);
  } finally {
    await b.close();
  }
});
