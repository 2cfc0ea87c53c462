// intercomd phone app service worker: caches the app shell so the app opens
// at once (and installs as an app); /config.json, /mqtt and the API (whose
// answers are the user's: the visitor log) always go to the network and are
// never cached. The cache name is the build's content hash.
const CACHE = "intercomd-f6ba650ff761111a";
const SHELL = ["./", "index.html", "style.css", "app.js", "wasm_exec.js", "calling.wasm",
  "manifest.webmanifest", "icon-192.png", "icon-512.png"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin ||
      url.pathname.endsWith("/config.json") || url.pathname.endsWith("/mqtt") || url.pathname.includes("/api/")) {
    return;
  }
  // Network first, so an updated device serves its new app; the cache when
  // the device is unreachable.
  e.respondWith(fetch(e.request).then((resp) => {
    if (resp.ok) {
      const copy = resp.clone();
      caches.open(CACHE).then((c) => c.put(e.request, copy));
    }
    return resp;
  }).catch(() => caches.match(e.request, { ignoreSearch: true })));
});

// --- Rings while the app is closed (Web Push; payloads in docs/protocol.md) ---

// The app hands its token over (postMessage) so that Decline works without
// opening the app; it is kept in this origin's cache storage.
const AUTH = "intercomd-auth";
self.addEventListener("message", (e) => {
  if (e.data && e.data.type === "token" && typeof e.data.token === "string") {
    e.waitUntil(caches.open(AUTH).then((c) => c.put("token", new Response(e.data.token))));
  }
});

async function token() {
  const r = await (await caches.open(AUTH)).match("token");
  return r ? r.text() : "";
}

self.addEventListener("push", (e) => {
  let p = {};
  try {
    p = e.data ? e.data.json() : {};
  } catch {
    return;
  }
  if (!p.call) return;
  e.waitUntil(showPush(p));
});

// showPush shows a ring (tag: the call, so the end replaces it), or
// replaces it with "Missed call from ..." or removes it.
async function showPush(p) {
  const tag = `call-${p.call}`;
  const open = await self.registration.getNotifications({ tag });
  if (p.type === "ring") {
    const opts = {
      tag, renotify: true, requireInteraction: true,
      body: p.body || "is calling",
      icon: "icon-192.png", badge: "icon-192.png",
      vibrate: [400, 200, 400, 200, 400],
      data: { call: p.call, from: p.from },
      actions: [{ action: "answer", title: "Answer" }, { action: "decline", title: "Decline" }],
    };
    if (p.snapshot) {
      const img = await snapshot(p.snapshot);
      if (img) opts.image = img;
    }
    return self.registration.showNotification(p.title || p.name || "Intercom", opts);
  }
  if (p.type === "end") {
    // A missed call replaces the ring by its tag. Closing the ring first
    // could close the replacement too: a notification's identity is its
    // tag, and close() is not waited for.
    if (p.reason === "missed") {
      return self.registration.showNotification(p.title || `Missed call from ${p.name}`, {
        tag, renotify: false, icon: "icon-192.png", data: { call: p.call, missed: true },
      });
    }
    open.forEach((n) => n.close());
  }
}

// snapshot fetches the picture of who rings (it needs the user's token,
// which a notification's own image fetch cannot send) as a data: URL;
// "" when it does not come within 3 s: the ring is not held up for it.
async function snapshot(path) {
  try {
    const t = await token();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 3000);
    const r = await fetch(new URL(path, self.registration.scope), {
      headers: { "Authorization": `Bearer ${t}` }, signal: ctl.signal,
    });
    clearTimeout(timer);
    if (!r.ok) return "";
    const bytes = new Uint8Array(await r.arrayBuffer());
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return `data:image/jpeg;base64,${btoa(bin)}`;
  } catch {
    return "";
  }
}

self.addEventListener("notificationclick", (e) => {
  const n = e.notification;
  const d = n.data || {};
  n.close();
  if (e.action === "decline") {
    e.waitUntil(decline(d.call));
    return;
  }
  // Answer, or a tap on the ring: open the app straight into the call.
  // A tap on a missed call just opens the app.
  const url = new URL(d.missed || !d.call ? "./" : `./#answer=${encodeURIComponent(d.call)}`, self.registration.scope).href;
  e.waitUntil(openApp(url));
});

async function openApp(url) {
  const wins = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const call = new URL(url).hash.replace(/^#answer=/, "");
  for (const w of wins) {
    if (new URL(w.url).origin === location.origin) {
      await w.focus();
      if (call) w.postMessage({ type: "answer", call: decodeURIComponent(call) });
      return;
    }
  }
  return self.clients.openWindow(url);
}

async function decline(call) {
  const t = await token();
  if (!call || !t) return openApp(new URL("./", self.registration.scope).href);
  const r = await fetch(new URL(`api/calls/${encodeURIComponent(call)}/decline`, self.registration.scope), {
    method: "POST", headers: { "Authorization": `Bearer ${t}` },
  }).catch(() => null);
  if (!r || (!r.ok && r.status !== 410)) {
    // The device could not be reached or refused: say so rather than
    // leave the caller believing nothing happened.
    return self.registration.showNotification("Could not decline", {
      tag: `call-${call}`, body: "Open the app to answer or decline.", data: { call },
    });
  }
}
