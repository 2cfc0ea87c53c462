// intercomd phone app service worker: caches the app shell so the app opens
// at once (and installs as an app); /config.json and /mqtt always go to the
// network. The cache name is the build's content hash.
const CACHE = "intercomd-076ec36a45459d24";
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
      url.pathname.endsWith("/config.json") || url.pathname.endsWith("/mqtt")) {
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
