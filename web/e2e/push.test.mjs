// Rings on a closed app, in a browser that trusts only the device's root
// (run by web/e2e_trust_test.go): a push delivered to the app's service
// worker (the DevTools protocol's ServiceWorker.deliverPushMessage, no push
// service needed) shows a notification with Answer and Decline; the end of
// the ring replaces it with "Missed call"; and the app opened the way
// Answer opens it (#answer=<call>) takes the call it was rung for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openTrusting, press, until, waitState, deviceState, control, token, APP } from "./helpers.mjs";

const notifications = (p) => p.page.evaluate(async () => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications()).map((n) => ({
    title: n.title, body: n.body, tag: n.tag, actions: (n.actions || []).map((a) => a.action),
  }));
});

async function pushTo(p, data) {
  const cdp = await p.ctx.newCDPSession(p.page);
  const regs = [];
  cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => regs.push(...e.registrations));
  await cdp.send("ServiceWorker.enable");
  const reg = await until("the service worker's registration", () => regs.find((r) => !r.isDeleted));
  await cdp.send("ServiceWorker.deliverPushMessage", {
    origin: new URL(APP).origin, registrationId: reg.registrationId, data: JSON.stringify(data),
  });
  await cdp.detach();
}

test("a pushed ring shows Answer and Decline, its end says missed, and Answer takes the call", async () => {
  const b = await openTrusting(process.env.TRUSTED_HOME);
  const alice = { ctx: b.ctx, page: await b.ctx.newPage(), user: "alice" };
  try {
    await alice.page.goto(`${APP}#token=${encodeURIComponent(await token("alice"))}`);
    await alice.page.waitForFunction(() => globalThis.intercomd && globalThis.intercomd.linkUp, null, { timeout: 20000 });
    await alice.ctx.grantPermissions(["notifications"], { origin: new URL(APP).origin });
    await alice.page.evaluate(() => navigator.serviceWorker.ready);
    await until("the app to learn the device's push key", () => alice.page.evaluate(() => globalThis.intercomd.pushKey));

    const ring = { v: 1, type: "ring", call: "c-test", from: "door", name: "Front door", title: "Front door", body: "is calling" };
    await pushTo(alice, ring);
    const shown = await until("the ring's notification", async () => (await notifications(alice)).find((n) => n.tag === "call-c-test"));
    assert.equal(shown.title, "Front door");
    assert.equal(shown.body, "is calling");
    assert.deepEqual(shown.actions, ["answer", "decline"]);

    await pushTo(alice, { v: 1, type: "end", call: "c-test", from: "door", name: "Front door", reason: "missed", title: "Missed call from Front door" });
    await until("the missed call to replace the ring", async () => {
      const ns = (await notifications(alice)).filter((n) => n.tag === "call-c-test");
      return ns.length === 1 && ns[0].title === "Missed call from Front door" && ns[0].actions.length === 0;
    });

    // The app is closed; the doorbell rings alice anyway (her ntfy topic
    // gets the ring, which names the call); Answer opens the app at
    // #answer=<call>, it asks the device for the invitation again and
    // answers: the door is in call with alice.
    await alice.page.close();
    const before = JSON.parse(await control("ntfy")).click;
    await press();
    const click = await until("the ring on alice's ntfy topic", async () => {
      const c = JSON.parse(await control("ntfy")).click;
      return c && c !== before ? c : null;
    });
    const call = /#call=([A-Za-z0-9_-]+)/.exec(click)[1];
    assert.equal(await deviceState(), "dialing");
    alice.page = await alice.ctx.newPage();
    await alice.page.goto(`${APP}#answer=${encodeURIComponent(call)}`);
    await waitState(alice, "in_call", 20000);
    await until("the door in call", async () => (await deviceState()) === "in_call");
    await alice.page.click("#hangup");
    await until("the door idle", async () => (await deviceState()) === "idle");
  } finally {
    await b.close();
  }
});
