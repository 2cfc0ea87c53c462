// intercomd phone web app.
//
// The calling state machine is intercomd's own (package calling compiled to
// WebAssembly, web/wasm): this file feeds it inputs (taps, MQTT messages,
// timers, WebRTC news) one at a time through post() and applies the effects
// it returns: MQTT publishes, timers, UI events and WebRTC requests.
// Everything runs on the page's one thread; async callbacks only post().
import mqtt from "mqtt";

const TOKEN_KEY = "intercomd.token";
const $ = (id) => document.getElementById(id);

const app = {
  cfg: null,        // /config.json
  token: "",
  user: "",
  session: "",
  client: null,     // MQTT.js client
  machine: null,    // the wasm calling machine
  loggedIn: false,
  state: "idle",    // the machine's state
  call: "",
  hub: "",
  peer: "",         // the other party shown in the call screen
  media: "video",
  invited: null,    // the invited event while ringing
  timers: new Map(),
  presence: new Map(),
  queue: [],
  busy: false,
  linkUp: false,
  refused: false,
  lastPublish: Promise.resolve(), // settles when the broker has the last message sent
  kicked: false,    // signed in on another device; "Use here" signs in again
  signalOnly: false,
  log: [],          // recent events, for tests and debugging
  unreachable: false, // config.json could not be fetched
  loading: false, // config.json is on its way
  linkDownSince: 0, // when the link went down (or signing in started)
  callStart: 0,     // when the call went in_call (the timer)
  door: null,       // {ok, text} of the last door request in this call
  openOnAnswer: false, // Open door tapped while ringing: open once in the call
  doorTries: 0,
  visitors: [],     // the visitor log's latest entries
  rejoining: false, // asked the hub to take this device back into the call
};

// ---- the calling machine ----

let wasmReady = null;

function loadWasm() {
  if (!wasmReady) {
    const go = new globalThis.Go();
    wasmReady = WebAssembly.instantiateStreaming(fetch("calling.wasm"), go.importObject)
      .then(({ instance }) => { go.run(instance); });
  }
  return wasmReady;
}

// post queues one input for the machine and runs the queue unless it is
// already running (an effect may post, synchronously, more inputs).
function post(input) {
  app.queue.push(input);
  if (app.busy) return;
  app.busy = true;
  try {
    while (app.queue.length > 0) stepOne(app.queue.shift());
  } finally {
    app.busy = false;
  }
  render();
}

function stepOne(input) {
  if (!app.machine) return;
  const r = JSON.parse(app.machine.step(Date.now(), JSON.stringify(input)));
  if (r.dropped) console.warn("intercomd: input dropped:", r.error);
  app.state = r.state;
  app.call = r.call || "";
  app.hub = r.hub || "";
  app.loggedIn = r.logged_in;
  for (const e of r.effects) {
    try {
      applyEffect(e);
    } catch (err) {
      console.error("intercomd: effect failed", e, err);
    }
  }
}

function applyEffect(e) {
  switch (e.type) {
    case "send": {
      const topic = e.group
        ? `${app.cfg.prefix}/v1/group/${e.group}/${app.user}`
        : `${app.cfg.prefix}/v1/inbox/${e.to}/${app.user}`;
      if (app.client) {
        const client = app.client;
        app.lastPublish = new Promise((resolve) => client.publish(topic, e.payload, { qos: 1 }, () => resolve()));
      }
      break;
    }
    case "emit":
      onEvent(e.event);
      break;
    case "start_timer": {
      clearTimeout(app.timers.get(e.key));
      const timer = e.timer;
      app.timers.set(e.key, setTimeout(() => {
        app.timers.delete(e.key);
        post({ type: "timer", timer });
      }, e.after_ms));
      break;
    }
    case "stop_timer":
      clearTimeout(app.timers.get(e.key));
      app.timers.delete(e.key);
      break;
    case "media":
      media.do(e.media);
      break;
    case "disconnect":
      // Signed in elsewhere: leave without an offline presence (the topic
      // now describes the newer session) and do not come back by itself.
      if (app.client) app.client.end(true);
      app.client = null;
      app.linkUp = false;
      app.kicked = true;
      break;
    case "door_open":
      break; // only a door station opens a door
  }
}

// ---- events: what the person is told ----

function nameOf(user) {
  const e = app.cfg && app.cfg.directory.find((d) => d.user === user);
  return e ? e.name : user;
}

function banner(text, kind = "info") {
  const b = $("banner");
  b.textContent = text;
  b.dataset.kind = kind;
  b.hidden = !text;
  app.log.push({ banner: text });
}

function onEvent(ev) {
  app.log.push(ev);
  switch (ev.name) {
    case "invited":
      app.invited = ev;
      app.peer = ev.sponsor;
      app.media = ev.media;
      banner("");
      // Early media: see who is at the door (or who calls with video)
      // while the phone rings. The caller sends its camera and microphone;
      // this side sends nothing until Answer.
      if (ev.media === "video" || ev.sponsor === app.cfg.device.user) post({ type: "preview" });
      // Ring latency: the device times press to ringing here.
      ringPush.api("POST", `api/calls/${encodeURIComponent(ev.call)}/ringing`).catch(() => {});
      if (ringPush.answer && ringPush.answer === ev.call) {
        ringPush.answer = "";
        post({ type: "accept" });
      }
      break;
    case "state_changed":
      if (ev.to === "idle") {
        app.invited = null;
        app.rejoining = false;
        app.signalOnly = false;
        app.callStart = 0;
        app.door = null;
        app.openOnAnswer = false;
        callTimer.stop();
        sessionStorage.removeItem(CALL_KEY);
        // The device writes the ring's outcome (and its picture) as the
        // call ends: fetch the visitor log now and once more a little later.
        visitorLog.refresh();
        setTimeout(() => visitorLog.refresh(), 3000);
      } else if (ev.to === "in_call") {
        // Back in a call this device rejoined: the call goes on from
        // where it was.
        if (!app.rejoining || !app.callStart) app.callStart = Date.now();
        app.rejoining = false;
        app.invited = null;
        callTimer.start();
        sessionStorage.setItem(CALL_KEY, JSON.stringify({
          call: app.call, peer: app.peer, hub: app.hub, media: app.media, at: Date.now(), start: app.callStart,
        }));
        if (app.openOnAnswer) {
          app.openOnAnswer = false;
          app.doorTries = 0;
          post({ type: "open_door" });
        }
      }
      break;
    case "user_enter":
      app.peer = app.peer || ev.user;
      break;
    case "rejected":
      banner(`${nameOf(ev.user)} declined the call.`);
      break;
    case "line_busy":
      banner(`${nameOf(ev.user)} is busy.`);
      break;
    case "no_resp":
      banner(app.presence.get(ev.user) === false
        ? `${nameOf(ev.user)} is offline.`
        : `${nameOf(ev.user)} did not answer.`);
      break;
    case "calling_cancel":
      banner({
        elsewhere: "Answered on another device.",
        offline: `${nameOf(ev.sponsor)} went offline.`,
      }[ev.reason] || `${nameOf(ev.sponsor)} cancelled the call.`);
      break;
    case "calling_timeout":
      banner(`Missed call from ${nameOf(app.peer)}.`);
      break;
    case "call_end": {
      if (app.rejoining) {
        // The hub refused to take this device back (its grace ran out,
        // the call is over) or never answered.
        banner("The call ended while the app was away.", "error");
        break;
      }
      const secs = Math.round((ev.duration_ms || 0) / 1000);
      const why = {
        hangup: secs > 0 ? `Call ended (${fmtDuration(secs)}).` : "",
        media: "The call was lost (no media connection).",
        kicked: "Signed in on another device.",
        offline: "", busy: "", declined: "", timeout: "", cancelled: "", elsewhere: "",
      }[ev.reason];
      if (why === undefined) banner(`Call ended: ${ev.reason}.`);
      else if (why) banner(why);
      break;
    }
    case "door_result":
      // Opened with the ringing screen's button: the door may not have
      // our media in the call yet; ask again shortly.
      if (!ev.ok && ev.reason === "not in the call" && app.doorTries < 3 && app.state === "in_call") {
        app.doorTries++;
        setTimeout(() => app.state === "in_call" && post({ type: "open_door" }), 700);
        break;
      }
      app.door = ev.ok
        ? { ok: true, text: `Door opened by ${nameOf(app.user)}` }
        : { ok: false, text: `The door did not open: ${ev.reason || "refused"}` };
      banner(ev.ok ? "Door opened." : `The door did not open: ${ev.reason || "refused"}.`, ev.ok ? "ok" : "error");
      break;
    case "switch_to_audio_result":
      banner(ev.ok ? "Switched to audio." : `Could not switch to audio: ${ev.message || "refused"}.`);
      if (ev.ok) app.media = "audio";
      break;
    case "kicked_offline":
      banner("You signed in on another device; this one is signed out.", "error");
      break;
    case "error":
      if (!/^(busy|no call)/.test(ev.error)) banner(`Error: ${ev.error}`, "error");
      console.warn("intercomd:", ev.error);
      break;
  }
}

function fmtDuration(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

// ---- WebRTC ----

// The placeholder SDP of an intercomd peer that runs without media
// (signaling only); such a peer gets a placeholder back and counts as joined.
const PLACEHOLDER = "s=intercomd-signal-only";
const PLACEHOLDER_SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=intercomd-signal-only\r\nt=0 0\r\n";

// Early media (preview): while the phone rings, the hub's offer arrives
// before this side has joined the call. The connection is then made without
// local tracks (the answer is receive-only) and the caller's video plays,
// muted, on the incoming screen. Answering joins the call on the same
// connection: the hub sends a new offer, and the answer to it carries the
// camera and microphone, attached to the transceivers the first offer made.
// The party is reported joined only after that.
//
// Connections are per device of a party (its user and login session, as
// the machine names them): a hub may have several devices of one user
// previewing at once, and closes only the one it is told to.
const deviceKey = (user, session) => `${user}/${session || ""}`;

class Media {
  constructor() {
    this.call = "";
    this.type = "video";
    this.isHub = false;
    this.previewing = false; // a preview of the call, not joined
    this.local = null;   // MediaStream
    this.remote = null;  // the remote MediaStream shown
    this.ready = Promise.resolve();
    this.peers = new Map(); // deviceKey -> {key, user, session, pc, pending: [], chain, joined, preview}
  }

  do(e) {
    switch (e.do) {
      case "join": this.join(e); break;
      case "connect_peer": this.connectPeer(e); break;
      case "disconnect_peer": this.closePeer(deviceKey(e.user, e.session)); break;
      case "leave": this.leave(); break;
      case "signal": this.signal(e); break;
      case "ring": ringer.play(e.tone); break;
      case "set_video": this.setVideo(e.on); break;
      case "control": this.control(e); break;
    }
  }

  join(e) {
    const fromPreview = this.previewing && this.call === e.call;
    if (fromPreview) {
      // Answering a previewed call: keep its connection; the hub's next
      // offer gets the local tracks (see signal).
      this.previewing = false;
      $("remote-video").srcObject = this.remote;
      if (this.remote && this.remote.getVideoTracks().length > 0) $("call-screen").dataset.remote = "";
    } else {
      this.leave();
    }
    this.call = e.call;
    this.type = e.media;
    this.isHub = e.is_hub;
    const call = e.call;
    // Peers wait for the camera and microphone (the door may answer before
    // getUserMedia does): their operations are chained on ready.
    this.ready = navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: e.media === "video" ? { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } } : false,
    }).then((stream) => {
      if (this.call !== call) {
        stream.getTracks().forEach((t) => t.stop());
        return;
      }
      this.local = stream;
      const self = $("local-video");
      self.srcObject = e.media === "video" ? stream : null;
      // Shown once it has a picture: never a black box.
      if (self.srcObject) self.addEventListener("loadeddata", () => { if (self.srcObject === stream) self.dataset.live = ""; }, { once: true });
      post({ type: "media_joined", call });
    }, (err) => {
      post({ type: "media_joined", call, error: `camera or microphone: ${err.message || err.name}` });
    });
  }

  // peer returns the entry of the party's device; its RTCPeerConnection is
  // made once the local media is ready, so every operation on it goes
  // through queue.
  peer(user, session) {
    const key = deviceKey(user, session);
    let p = this.peers.get(key);
    if (p) return p;
    const call = this.call;
    // preview: the party may not be reported joined yet (the hub: it only
    // previews; this side: it has not answered with its tracks yet).
    p = { key, user, session: session || "", pc: null, pending: [], chain: null, joined: false, signalOnly: false, preview: this.previewing };
    this.peers.set(key, p);
    p.chain = this.ready.then(() => {
      if (this.peers.get(key) !== p) return;
      p.pc = this.newPC(call, p);
    });
    return p;
  }

  // mediaOut sends a media message to the party's device of p.
  mediaOut(call, p, msg) {
    post({ type: "media_out", call, to: p.user, session: p.session, msg });
  }

  newPC(call, p) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    if (this.isHub) {
      // The hub offers: one transceiver per kind, receiving even without a
      // local track of that kind.
      if (this.local) {
        for (const track of this.local.getTracks()) pc.addTransceiver(track, { direction: "sendrecv", streams: [this.local] });
      }
      if (this.type === "video" && !pc.getTransceivers().some((t) => t.receiver.track.kind === "video")) {
        pc.addTransceiver("video", { direction: "recvonly" });
      }
      if (!pc.getTransceivers().some((t) => t.receiver.track.kind === "audio")) {
        pc.addTransceiver("audio", { direction: "recvonly" });
      }
      preferH264(pc);
    } else if (this.local) {
      // The party answers: tracks added with addTrack are matched to the
      // offer's m-lines by kind when the offer is applied.
      for (const track of this.local.getTracks()) pc.addTrack(track, this.local);
    }
    pc.onicecandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate) {
        this.mediaOut(call, p, { type: "candidate", candidate: ev.candidate.toJSON() });
      }
    };
    pc.ontrack = (ev) => {
      if (this.peers.get(p.key) !== p || p.pc !== pc) return;
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      // A preview shows the caller only, not the other parties a hub
      // forwards (streams "fwd-USER").
      if (this.previewing && stream.id.startsWith("fwd-")) return;
      this.remote = stream;
      // While previewing the caller plays muted on the incoming screen
      // only; the call screen's player (with sound) gets it on answering.
      const players = this.previewing ? [$("preview-video")] : [$("remote-video"), $("preview-video")];
      for (const v of players) {
        if (v.srcObject !== stream) v.srcObject = stream;
        v.play().catch(() => {});
      }
      if (ev.track.kind === "video") {
        $("preview-video").dataset.live = "";
        const remote = $("remote-video");
        const shown = () => { if (remote.srcObject === stream && remote.videoWidth > 0) $("call-screen").dataset.remote = ""; };
        remote.addEventListener("loadeddata", shown, { once: true });
        shown();
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.peers.get(p.key) !== p || p.pc !== pc) return;
      const s = pc.connectionState;
      if (s === "connected") {
        this.joined(p);
      } else if (s === "failed") {
        if (this.isHub) post({ type: "peer_left", call, user: p.user, session: p.session, reason: "media" });
        else if (app.state === "in_call" && !app.rejoining) rejoin();
        else post({ type: "media_failed", call, error: "media connection failed" });
      }
    };
    return pc;
  }

  // queue runs fn after the peer's previous operations, so an offer is
  // applied before the candidates that follow it.
  queue(p, fn) {
    p.chain = p.chain.then(fn).catch((err) => {
      console.warn("intercomd: webrtc:", err);
      if ([...this.peers.values()].includes(p)) {
        post({ type: "media_failed", call: this.call, error: `webrtc: ${err.message || err}` });
      }
    });
  }

  // joined reports the party's media connected, once, unless it only
  // previews.
  joined(p) {
    if (p.joined || p.preview || !p.pc || p.pc.connectionState !== "connected") return;
    p.joined = true;
    post({ type: "peer_joined", call: this.call, user: p.user, session: p.session });
  }

  // connectPeer (hub) offers to the party; for a party that previewed, the
  // connection exists and this offer renegotiates it.
  connectPeer(e) {
    const p = this.peer(e.user, e.session);
    const call = this.call;
    p.preview = !!e.preview;
    this.queue(p, async () => {
      const offer = await p.pc.createOffer();
      await p.pc.setLocalDescription(offer);
      this.mediaOut(call, p, { type: "offer", sdp: p.pc.localDescription.sdp });
    });
  }

  // startPreview makes ready for a hub's offer that comes before this side
  // joined the call: a connection without local media.
  startPreview(call) {
    this.closeAll();
    this.call = call;
    this.type = app.invited ? app.invited.media : "video";
    this.isHub = false;
    this.local = null;
    this.ready = Promise.resolve();
    this.previewing = true;
  }

  // attachTracks gives the local tracks to a connection made for a
  // preview: each goes on the offer's unused transceiver of its kind (sent
  // in the answer being made), or is added when there is none.
  async attachTracks(pc) {
    for (const track of this.local.getTracks()) {
      if (pc.getSenders().some((s) => s.track === track)) continue;
      const t = pc.getTransceivers().find((t) => !t.stopped && !t.sender.track &&
        t.receiver.track.kind === track.kind && t.currentDirection !== "stopped");
      if (!t) {
        pc.addTrack(track, this.local);
        continue;
      }
      await t.sender.replaceTrack(track);
      if (t.sender.setStreams) t.sender.setStreams(this.local);
      t.direction = "sendrecv";
    }
  }

  signal(e) {
    // The core passes media for a call this side has not joined only when
    // it asked for a preview.
    if (e.call !== this.call) this.startPreview(e.call);
    const msg = e.msg;
    const from = e.from;
    const call = this.call;
    const p = this.peer(from, e.session);
    switch (msg.type) {
      case "offer":
        this.queue(p, async () => {
          if (msg.sdp.includes(PLACEHOLDER)) {
            if (!this.previewing) p.preview = false;
            this.markSignalOnly(p);
            this.mediaOut(call, p, { type: "answer", sdp: PLACEHOLDER_SDP });
            return;
          }
          const joining = p.preview && !this.previewing;
          if (joining) await this.ready;
          try {
            await p.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
          } catch (err) {
            if (!p.pc.remoteDescription) throw err;
            // A hub that starts a new connection rather than renegotiating
            // (another certificate): follow it with a new one too.
            console.warn("intercomd: webrtc: offer does not fit the connection, starting a new one:", err);
            p.pc.close();
            p.pc = this.newPC(call, p);
            await p.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
          }
          if (joining && this.local) {
            await this.attachTracks(p.pc);
            p.preview = false;
          }
          preferH264(p.pc);
          await this.flush(p);
          const answer = await p.pc.createAnswer();
          await p.pc.setLocalDescription(answer);
          this.mediaOut(call, p, { type: "answer", sdp: p.pc.localDescription.sdp });
          if (joining) await keepResolution(p.pc);
          this.joined(p);
        });
        break;
      case "answer":
        this.queue(p, async () => {
          if (msg.sdp.includes(PLACEHOLDER)) {
            this.markSignalOnly(p);
            return;
          }
          await p.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
          await this.flush(p);
          // A party that previewed is connected already.
          this.joined(p);
        });
        break;
      case "candidate":
        this.queue(p, async () => {
          if (p.signalOnly) return;
          if (p.pc.remoteDescription) await p.pc.addIceCandidate(msg.candidate);
          else if (p.pending.length < 64) p.pending.push(msg.candidate);
        });
        break;
    }
  }

  markSignalOnly(p) {
    p.signalOnly = true;
    app.signalOnly = true;
    if (!p.joined && !p.preview) {
      p.joined = true;
      post({ type: "peer_joined", call: this.call, user: p.user, session: p.session });
    }
  }

  async flush(p) {
    const pending = p.pending;
    p.pending = [];
    for (const c of pending) await p.pc.addIceCandidate(c);
  }

  // closePeer closes the connection once the broker has the message sent
  // just before (a leave), so the other side learns why from signaling
  // rather than from its media going away; a second at most. The tracks it
  // sent stop too, unless keepTracks (they go on a new connection).
  closePeer(key, keepTracks = false) {
    const p = this.peers.get(key);
    if (!p) return;
    this.peers.delete(key);
    const close = () => { if (p.pc) p.pc.close(); };
    Promise.race([app.lastPublish, new Promise((r) => setTimeout(r, 1000))])
      .then(() => new Promise((r) => setTimeout(r, 250))).then(close, close);
    if (!keepTracks) p.chain.then(() => { if (p.pc) p.pc.getSenders().forEach((snd) => snd.track && snd.track.stop()); });
  }

  // closePeers closes every connection, keeping the local media: the hub
  // makes new ones when this device rejoins.
  closePeers() {
    for (const key of [...this.peers.keys()]) this.closePeer(key, true);
  }

  // alive reports whether a connection to the hub carries the call (or
  // may come back by itself: the hub restarts ICE while it is disconnected).
  alive() {
    return [...this.peers.values()].some((p) => p.signalOnly || !p.pc ||
      ["new", "connecting", "connected", "disconnected"].includes(p.pc.connectionState));
  }

  // closeAll closes every connection and releases the local media.
  closeAll() {
    for (const key of [...this.peers.keys()]) this.closePeer(key);
    if (this.local) this.local.getTracks().forEach((t) => t.stop());
    this.local = null;
    this.remote = null;
    this.previewing = false;
    this.call = "";
    $("remote-video").srcObject = null;
    $("preview-video").srcObject = null;
    delete $("preview-video").dataset.live;
    delete $("call-screen").dataset.remote;
    $("local-video").srcObject = null;
    delete $("local-video").dataset.live;
  }

  leave() {
    this.closeAll();
    ringer.play("none");
  }

  setVideo(on) {
    if (this.local) this.local.getVideoTracks().forEach((t) => { t.enabled = on; });
    if (!on) app.media = "audio";
  }

  control(e) {
    switch (e.control) {
      case "mic_mute":
        if (this.local) this.local.getAudioTracks().forEach((t) => { t.enabled = !e.on; });
        break;
      case "camera":
        if (this.local) this.local.getVideoTracks().forEach((t) => { t.enabled = e.on; });
        break;
      case "hands_free":
        $("remote-video").muted = !e.on;
        break;
    }
  }
}

// keepResolution asks the video senders to lower the frame rate rather
// than the resolution while the bandwidth estimate is low: tracks added by
// a renegotiation start on a connection whose estimate has not been probed
// for this direction, and would otherwise start at a quarter of the size.
async function keepResolution(pc) {
  for (const s of pc.getSenders()) {
    if (!s.track || s.track.kind !== "video") continue;
    try {
      const params = s.getParameters();
      params.degradationPreference = "maintain-resolution";
      await s.setParameters(params);
    } catch (err) {
      console.warn("intercomd: video sender parameters:", err);
    }
  }
}

// preferH264 puts H.264 constrained baseline (what the door sends and
// phones decode in hardware) first, then the rest.
function preferH264(pc) {
  if (!RTCRtpReceiver.getCapabilities || !RTCRtpTransceiver.prototype.setCodecPreferences) return;
  const caps = RTCRtpReceiver.getCapabilities("video");
  if (!caps) return;
  const rank = (c) => {
    if (c.mimeType.toLowerCase() !== "video/h264") return 2;
    const f = c.sdpFmtpLine || "";
    return /profile-level-id=42e01f/i.test(f) && /packetization-mode=1/.test(f) ? 0 : 1;
  };
  const codecs = [...caps.codecs].sort((a, b) => rank(a) - rank(b));
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind === "video") {
      try { t.setCodecPreferences(codecs); } catch (err) { console.warn("intercomd: codec preferences:", err); }
    }
  }
}

// ---- ringing tones (Web Audio) ----

const ringer = {
  ctx: null,
  gain: null,
  timer: 0,
  buzz: 0,
  tone: "none",
  play(tone) {
    if (tone === this.tone) return;
    this.stop();
    this.tone = tone;
    document.body.dataset.ringing = tone === "ringtone" ? "true" : "false";
    if (tone === "none") return;
    if (tone === "ringtone") this.vibrate();
    try {
      this.ctx = this.ctx || new AudioContext();
      this.ctx.resume().catch(() => {});
    } catch {
      return;
    }
    // Ringtone: two tones twice a second for 1 s, 2 s silence; ringback:
    // 425 Hz, 1 s on, 4 s off.
    const [freqs, on, period] = tone === "ringtone" ? [[800, 1000], 1.0, 3.0] : [[425], 1.0, 5.0];
    const burst = () => {
      const ctx = this.ctx;
      const t0 = ctx.currentTime;
      const g = ctx.createGain();
      g.gain.value = 0;
      g.connect(ctx.destination);
      const osc = ctx.createOscillator();
      osc.connect(g);
      for (let i = 0; i < on * 10; i++) {
        osc.frequency.setValueAtTime(freqs[i % freqs.length], t0 + i * 0.1);
      }
      g.gain.setValueAtTime(0.2, t0);
      g.gain.setValueAtTime(0, t0 + on);
      osc.start(t0);
      osc.stop(t0 + on + 0.05);
    };
    burst();
    this.timer = setInterval(burst, period * 1000);
  },
  stop() {
    clearInterval(this.timer);
    clearInterval(this.buzz);
    this.timer = 0;
    this.buzz = 0;
    if (this.tone === "ringtone" && navigator.vibrate) navigator.vibrate(0);
    this.tone = "none";
    document.body.dataset.ringing = "false";
  },
  // vibrate buzzes with the ringtone where the browser lets a page (not on
  // iOS; Chrome on Android once the page has had a tap).
  vibrate() {
    if (!navigator.vibrate) return;
    const buzz = () => { try { navigator.vibrate([700, 300, 700]); } catch { /* not allowed */ } };
    buzz();
    this.buzz = setInterval(buzz, 3000);
  },
};

const media = new Media();

// ---- signaling (MQTT over WebSocket) ----

function randomID(n = 12) {
  const abc = "abcdefghijklmnopqrstuvwxyz0123456789";
  const b = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(b, (x) => abc[x % abc.length]).join("");
}

// parseToken reads the user and expiry of a token v1.<user>.<expiry>.<mac>;
// only the device can check the rest.
function parseToken(token) {
  const m = /^v1\.([A-Za-z0-9_-]{1,64})\.(0|[1-9][0-9]*)\.([A-Za-z0-9_-]{43})$/.exec(token);
  return m ? { user: m[1], expires: new Date(Number(m[2]) * 1000) } : null;
}

function brokerURL() {
  if (app.cfg.mqtt_url) return app.cfg.mqtt_url;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${app.cfg.mqtt_path}`;
}

function presencePayload(state) {
  return JSON.stringify({ v: 1, state, session: app.session, versions: [1] });
}

// refusedMessage says why the intercom refused a token with these claims.
function refusedMessage(claims) {
  return claims.expires.getTime() <= Date.now()
    ? `Your sign-in expired on ${claims.expires.toLocaleDateString()}. Ask for a new token.`
    : "The intercom refused this token (wrong, altered or expired). Ask for a new one.";
}

// loadConfig fetches the intercom's configuration (directory, groups, who
// may open the door), which it gives to signed-in users only: the parsed
// JSON, or null when the token is refused.
async function loadConfig(token) {
  const r = await fetch("config.json", { cache: "no-store", headers: { "Authorization": `Bearer ${token}` } });
  if (r.status === 401) return null;
  if (!r.ok) throw new Error(`config.json: ${r.status} ${r.statusText}`);
  return r.json();
}

async function signIn(token) {
  const claims = parseToken(token);
  if (!claims) {
    signInError("This is not an intercom token. It looks like v1.name.1798761600.… — ask for a new one.");
    return;
  }
  let cfg;
  app.loading = true;
  try {
    cfg = await loadConfig(token);
  } catch (err) {
    app.loading = false;
    app.unreachable = true;
    render();
    return;
  }
  app.loading = false;
  if (!cfg) {
    signOut(refusedMessage(claims));
    return;
  }
  app.cfg = cfg;
  $("title").textContent = cfg.device.name || "Intercom";
  app.token = token;
  app.user = claims.user;
  app.session = randomID();
  app.refused = false;
  app.kicked = false;
  app.loggedIn = false;
  app.state = "idle";
  localStorage.setItem(TOKEN_KEY, token);
  linkDown();
  await loadWasm();
  app.machine = globalThis.intercomdCalling(JSON.stringify({
    user: app.user,
    session: app.session,
    invite_timeout_ms: app.cfg.invite_timeout_ms,
    multi_device: app.cfg.multi_device,
  }));
  if (app.machine instanceof Error) throw app.machine;
  showScreen();
  connect(claims);
}

// linkDown notes when the link went down: after a few seconds the home
// screen says the intercom cannot be reached.
function linkDown() {
  app.linkDownSince = Date.now();
  setTimeout(render, 5100);
}

function connect(claims) {
  const prefix = app.cfg.prefix;
  const me = app.user;
  const client = mqtt.connect(brokerURL(), {
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId: `${me}.${app.session}`,
    username: me,
    password: app.token,
    reconnectPeriod: 2000,
    connectTimeout: 10000,
    resubscribe: false,
    will: { topic: `${prefix}/v1/presence/${me}`, payload: presencePayload("offline"), qos: 1, retain: true },
  });
  app.client = client;
  client.on("connect", () => {
    if (app.client !== client) return;
    const groups = Object.entries(app.cfg.groups || {})
      .filter(([, members]) => (members || []).includes(me)).map(([g]) => `${prefix}/v1/group/${g}/+`);
    client.subscribe([`${prefix}/v1/inbox/${me}/+`, `${prefix}/v1/presence/+`, ...groups], { qos: 1 }, (err) => {
      if (err || app.client !== client) return;
      client.publish(`${prefix}/v1/presence/${me}`, presencePayload("online"), { qos: 1, retain: true });
      app.linkUp = true;
      if (!app.loggedIn) post({ type: "login" });
      post({ type: "link", up: true });
      ringPush.linked();
      tokenRenew.start();
      visitorLog.refresh();
      reloaded();
      checkCall();
    });
  });
  client.on("error", (err) => {
    if (app.client !== client) return;
    // CONNACK 4 (bad user name or password) and 5 (not authorised): the
    // broker refused the token; retrying will not help.
    if (err && (err.code === 4 || err.code === 5 || err.code === 134 || err.code === 135)) {
      app.refused = true;
      client.end(true);
      app.client = null;
      signOut(refusedMessage(claims));
    }
  });
  client.on("close", () => {
    if (app.client !== client) return;
    if (app.linkUp) {
      app.linkUp = false;
      linkDown();
      post({ type: "link", up: false });
    }
    render();
  });
  client.on("message", (topic, payload) => onMessage(topic, payload));
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

function onMessage(topic, payload) {
  const head = `${app.cfg.prefix}/v1/`;
  if (!topic.startsWith(head)) return;
  const parts = topic.slice(head.length).split("/");
  if (parts.length < 2 || !parts.slice(1).every((p) => ID.test(p))) return;
  const text = new TextDecoder().decode(payload);
  switch (parts[0]) {
    case "inbox":
      if (parts.length === 3 && parts[1] === app.user) post({ type: "received", from: parts[2], payload: text });
      break;
    case "group":
      if (parts.length === 3) post({ type: "received", from: parts[2], group: parts[1], payload: text });
      break;
    case "presence": {
      if (parts.length !== 2) return;
      const user = parts[1];
      let online = false;
      let session = "";
      if (text) {
        try {
          const p = JSON.parse(text);
          if (p.v !== 1 || (p.state !== "online" && p.state !== "offline")) return;
          online = p.state === "online";
          session = p.session;
        } catch {
          return;
        }
      }
      if (user === app.user && !online && session !== app.session && app.client && app.linkUp) {
        // The last will of an earlier session of mine (a closed tab, a
        // dropped connection noticed late) overwrote my presence: say again
        // that I am online, or nobody could call me.
        app.client.publish(topic, presencePayload("online"), { qos: 1, retain: true });
        return;
      }
      app.presence.set(user, online);
      if (user !== app.user) post({ type: "presence", user, online });
      else render();
      break;
    }
  }
}

function signOut(message) {
  if (app.state !== "idle") post({ type: "hangup" });
  if (app.loggedIn) post({ type: "logout" });
  const client = app.client;
  app.client = null;
  if (client) {
    // A clean disconnect discards the will: say offline first.
    client.publish(`${app.cfg.prefix}/v1/presence/${app.user}`, presencePayload("offline"), { qos: 1, retain: true }, () => client.end());
  }
  for (const t of app.timers.values()) clearTimeout(t);
  app.timers.clear();
  media.leave();
  localStorage.removeItem(TOKEN_KEY);
  app.machine = null;
  app.loggedIn = false;
  app.state = "idle";
  app.user = "";
  app.token = "";
  app.linkUp = false;
  app.presence.clear();
  app.visitors = [];
  for (const url of visitorLog.pics.values()) URL.revokeObjectURL(url);
  visitorLog.pics.clear();
  visitorLog.loaded = false;
  banner("");
  showScreen();
  if (message) signInError(message);
}

function signInError(text) {
  app.loading = false;
  render();
  const e = $("signin-error");
  e.textContent = text;
  e.hidden = !text;
  app.log.push({ signin_error: text });
}

// ---- UI ----

const CALL_KEY = "intercomd.call"; // the call in progress (sessionStorage): a reload says what happened

function showScreen() {
  render();
}

const mayOpenDoor = () => (app.cfg.door_users || []).includes(app.user);

function render() {
  const signedIn = !!app.machine;
  const st = app.state;
  const ringing = signedIn && st === "ringing" && !!app.invited;
  const inCall = signedIn && !ringing && (st === "dialing" || st === "in_call" || st === "ringing");
  $("unreachable-screen").hidden = !app.unreachable;
  $("top").hidden = app.unreachable || !signedIn || ringing || inCall;
  $("signin-screen").hidden = app.unreachable || signedIn || app.loading;
  $("home-screen").hidden = !signedIn || st !== "idle";
  $("incoming-screen").hidden = !ringing;
  $("call-screen").hidden = !inCall;
  document.body.dataset.state = signedIn ? st : "signed-out";
  document.body.dataset.screen = app.unreachable ? "unreachable" : !signedIn ? "signin" : ringing ? "incoming" : inCall ? "call" : "home";
  $("signin-title").textContent = `Sign in to ${(app.cfg && app.cfg.device.name) || "the intercom"}`;

  const status = $("status");
  if (!signedIn) {
    status.dataset.state = "signed-out";
    status.textContent = "Signed out";
  } else if (!app.linkUp) {
    status.dataset.state = "offline";
    status.textContent = app.kicked ? "Signed in elsewhere" : app.refused ? "Refused" : "Connecting…";
  } else {
    status.dataset.state = "online";
    status.textContent = { idle: "Online", dialing: "Calling…", ringing: "Ringing", in_call: "In call" }[st] || st;
  }
  if (!signedIn) return;
  $("whoami").textContent = `Signed in as ${nameOf(app.user)} on ${app.cfg.device.name}.`;
  $("kicked-card").hidden = !app.kicked;
  const down = !app.linkUp && !app.kicked;
  $("offline-card").hidden = !down;
  if (down) {
    const long = Date.now() - app.linkDownSince > 5000;
    $("offline-card").querySelector("strong").textContent = long ? `Can’t reach ${app.cfg.device.name} right now.` : "Connecting to the intercom…";
    $("offline-why").textContent = long
      ? "Is this phone on the home Wi-Fi? The app keeps trying; calls and rings work again as soon as it is back."
      : "";
  }
  renderDirectory();
  visitorLog.render();
  settings.render();

  if (app.invited) {
    $("incoming-who").textContent = nameOf(app.invited.sponsor);
    $("incoming-what").textContent = `is ringing · ${app.invited.media === "video" ? "video" : "audio"}`;
    $("incoming-door").hidden = !(mayOpenDoor() && app.invited.sponsor === app.cfg.device.user);
  }
  const peer = app.hub && app.hub !== app.user ? app.hub : app.peer;
  $("call-who").textContent = nameOf(peer);
  $("call-state").textContent = {
    dialing: "Calling…",
    ringing: app.rejoining ? "Rejoining…" : "Connecting…",
    in_call: app.signalOnly ? "Connected (no media)" : "",
  }[st] || "";
  $("call-timer").hidden = st !== "in_call";
  callTimer.tick();
  $("avatar").textContent = (nameOf(peer) || "?").trim().charAt(0).toUpperCase();
  $("videos").dataset.video = app.media === "video" ? "on" : "off";
  const door = app.cfg.device.user;
  $("open-door").hidden = !(mayOpenDoor() && st === "in_call" && (app.hub === door || app.peer === door));
  $("audio-only").disabled = st !== "in_call" || app.media !== "video";
  const ds = $("door-state");
  ds.hidden = !app.door;
  if (app.door) {
    ds.textContent = app.door.text;
    ds.dataset.ok = String(app.door.ok);
  }
}

// callTimer shows the call's length, every second while in a call.
const callTimer = {
  timer: 0,
  start() {
    if (!this.timer) this.timer = setInterval(() => this.tick(), 1000);
    this.tick();
  },
  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  },
  tick() {
    if (!app.callStart) return;
    $("call-timer").textContent = fmtDuration(Math.floor((Date.now() - app.callStart) / 1000));
  },
};

function presenceText(user) {
  return app.presence.get(user) === true ? "Online" : "Offline";
}

function renderDirectory() {
  const ul = $("directory");
  const entries = app.cfg.directory.filter((e) => e.user !== app.user);
  const idle = app.state === "idle" && app.linkUp;
  ul.replaceChildren(...entries.map((e) => {
    const li = document.createElement("li");
    li.dataset.user = e.user;
    if (e.door) li.className = "door";
    const online = app.presence.get(e.user) === true;
    const who = document.createElement("div");
    who.className = "who";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = e.name;
    const presence = document.createElement("span");
    presence.className = "presence";
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.dataset.online = String(online);
    presence.append(dot, e.door && !online ? "Unreachable" : presenceText(e.user));
    who.append(name, presence);
    const buttons = document.createElement("div");
    buttons.className = "buttons";
    const button = (kind, label, icon, cls) => {
      const b = document.createElement("button");
      b.className = `call-${kind} ${cls}`;
      b.setAttribute("aria-label", `${label} ${e.name}`);
      b.innerHTML = `<svg aria-hidden="true"><use href="#${icon}"/></svg>`;
      b.append(e.door ? (kind === "video" ? "See and talk" : "Talk") : (kind === "video" ? "Video" : "Audio"));
      b.disabled = !idle || !online;
      b.onclick = () => placeCall(e.user, kind);
      return b;
    };
    buttons.append(button("video", "Video call", "i-video", "primary"), button("audio", "Audio call", "i-phone", ""));
    li.append(who, buttons);
    return li;
  }));
}

// visitorLog shows the device's visitor log (docs/protocol.md, 13.3): the
// latest rings with their pictures, fetched with the user's token (an
// <img> cannot send it, so each picture becomes a blob: URL), and a play
// control on the rings with a visitor's voice message, fetched when played.
const visitorLog = {
  pics: new Map(), // id -> blob: URL
  player: null,    // the message playing: { id, audio, url }
  loading: false,
  loaded: false,
  off: false,      // not for this user (403) or off on the device (404)
  async refresh() {
    if (!app.token || this.loading) return;
    this.loading = true;
    try {
      const r = await ringPush.api("GET", "api/visitors?limit=20");
      this.off = r.status === 403 || r.status === 404;
      if (this.off) render();
      if (!r.ok) return;
      const { visitors } = await r.json();
      app.visitors = Array.isArray(visitors) ? visitors : [];
      this.loaded = true;
      await Promise.all(app.visitors.filter((v) => v.snapshot && !this.pics.has(v.id)).map(async (v) => {
        const img = await ringPush.api("GET", `api/visitors/${encodeURIComponent(v.id)}/snapshot`);
        if (img.ok) this.pics.set(v.id, URL.createObjectURL(await img.blob()));
      }));
      for (const [id, url] of this.pics) {
        if (!app.visitors.some((v) => v.id === id)) {
          URL.revokeObjectURL(url);
          this.pics.delete(id);
        }
      }
      render();
    } catch { /* offline: the list stays as it was */ } finally {
      this.loading = false;
    }
  },
  describe(v) {
    const parts = [];
    if (v.outcome === "answered") {
      parts.push(`Answered by ${nameOf(v.answered_by)}` + (v.duration_ms > 0 ? ` · ${fmtDuration(Math.round(v.duration_ms / 1000))}` : ""));
    } else if (v.outcome === "declined") {
      parts.push(`Declined by ${(v.declined_by || []).map(nameOf).join(", ")}`);
    } else if (v.outcome === "missed") {
      parts.push("Missed: nobody answered");
    } else if (v.outcome === "ringing") {
      parts.push("Ringing now");
    } else {
      parts.push("Interrupted");
    }
    for (const d of v.doors || []) parts.push(`Door opened by ${nameOf(d.by)}`);
    if (v.message) parts.push(`Voice message ${fmtDuration(Math.max(1, Math.round((v.message_ms || 0) / 1000)))}`);
    return parts.join(" · ");
  },
  when(v) {
    const t = new Date(v.time);
    const today = new Date();
    const time = t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (t.toDateString() === today.toDateString()) return `Today ${time}`;
    const y = new Date(today);
    y.setDate(today.getDate() - 1);
    if (t.toDateString() === y.toDateString()) return `Yesterday ${time}`;
    return `${t.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })} ${time}`;
  },
  render() {
    const ul = $("visitors");
    $("visitors-heading").hidden = ul.hidden = this.off;
    $("visitors-empty").hidden = this.off || app.visitors.length > 0;
    $("visitors-empty").textContent = this.loaded ? "Nobody has rung yet." : "The visitors show once the intercom is reachable.";
    ul.replaceChildren(...app.visitors.map((v) => {
      const li = document.createElement("li");
      li.dataset.outcome = v.outcome;
      li.dataset.id = v.id;
      li.dataset.message = v.message ? "true" : "false";
      const b = document.createElement("button");
      b.className = "entry";
      const missed = v.outcome === "missed";
      b.setAttribute("aria-label", `${missed ? "Missed: " : ""}${this.when(v)}, ${this.describe(v)}`);
      let thumb;
      if (this.pics.has(v.id)) {
        thumb = document.createElement("img");
        thumb.src = this.pics.get(v.id);
        thumb.alt = "";
      } else {
        thumb = document.createElement("span");
        thumb.innerHTML = '<svg aria-hidden="true"><use href="#i-door"/></svg>';
      }
      thumb.className = "thumb";
      const text = document.createElement("span");
      text.className = "text";
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = this.when(v);
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = this.describe(v);
      const badges = document.createElement("span");
      badges.className = "badges";
      if (missed) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "Missed";
        badges.append(badge);
      }
      if (v.message) {
        const badge = document.createElement("span");
        badge.className = "badge message";
        badge.textContent = "Message";
        badges.append(badge);
      }
      if (badges.childElementCount > 0) text.append(badges);
      text.append(when, what);
      b.append(thumb, text);
      b.onclick = () => this.show(v);
      li.append(b);
      if (v.message) li.append(this.playButton(v));
      return li;
    }));
  },
  // playButton plays or stops the voice message of v.
  playButton(v) {
    const p = document.createElement("button");
    const playing = this.player?.id === v.id;
    p.className = "icon play";
    p.dataset.playing = String(playing);
    p.setAttribute("aria-label", `${playing ? "Stop" : "Play"} the voice message of ${this.when(v)}`);
    p.innerHTML = `<svg aria-hidden="true"><use href="#${playing ? "i-stop" : "i-play"}"/></svg>`;
    p.onclick = () => this.play(v);
    return p;
  },
  stopPlaying() {
    const pl = this.player;
    if (!pl) return;
    this.player = null;
    pl.audio.pause();
    URL.revokeObjectURL(pl.url);
  },
  async play(v) {
    const same = this.player?.id === v.id;
    this.stopPlaying();
    this.render();
    if (same) return;
    const r = await ringPush.api("GET", `api/visitors/${encodeURIComponent(v.id)}/message`).catch(() => null);
    if (!r?.ok) {
      banner("The message could not be loaded.");
      return;
    }
    const url = URL.createObjectURL(await r.blob());
    const audio = new Audio(url);
    this.stopPlaying(); // another play started meanwhile
    this.player = { id: v.id, audio, url };
    audio.onended = () => {
      if (this.player?.audio !== audio) return;
      this.stopPlaying();
      this.render();
    };
    this.render();
    audio.play().catch(() => {
      if (this.player?.audio !== audio) return;
      this.stopPlaying();
      this.render();
      banner("The message could not be played.");
    });
  },
  show(v) {
    $("visitor-title").textContent = this.when(v);
    const img = $("visitor-img");
    img.hidden = !this.pics.has(v.id);
    if (this.pics.has(v.id)) img.src = this.pics.get(v.id);
    $("visitor-text").textContent = this.describe(v);
    openDialog($("visitor"));
  },
};

function openDialog(d) {
  if (d.showModal) d.showModal();
  else d.setAttribute("open", "");
}

function closeDialog(d) {
  if (d.close) d.close();
  else d.removeAttribute("open");
}

// settings is the menu: notifications, the app installed or not, sign out.
const settings = {
  installPrompt: null,
  render() {
    let push;
    if (!("Notification" in window) || !("PushManager" in window) || !("serviceWorker" in navigator)) {
      push = "This browser cannot ring the phone while the app is closed.";
    } else if (!ringPush.key) {
      push = "Rings reach this phone while the app is open.";
    } else if (Notification.permission === "granted") {
      push = "On: this phone rings even when the app is closed.";
    } else if (Notification.permission === "denied") {
      push = "Blocked in the browser's site settings.";
    } else {
      push = "Off: this phone rings only while the app is open.";
    }
    $("push-state").textContent = push;
    const standalone = matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
    $("install-state").textContent = standalone
      ? "Installed on this phone."
      : this.installPrompt ? "Not installed." : "Not installed: use the browser's menu, Add to Home screen.";
    $("install").hidden = standalone || !this.installPrompt;
  },
};

function placeCall(user, type) {
  banner("");
  $("reload-card").hidden = true;
  app.peer = user;
  app.media = type;
  app.signalOnly = false;
  ringer.ctx = ringer.ctx || new AudioContext(); // unlocked by this tap
  post({ type: "call", users: [user], media: type });
}

// rejoin asks the call's hub to take this device back into the call, on
// new connections: the old ones are dead (the app was in the background,
// the network changed). The hub refuses once the call is over; the call
// then ends here, saying so.
function rejoin() {
  app.rejoining = true;
  media.closePeers();
  post({ type: "rejoin" });
}

// checkCall runs when the app comes back (shown again, the link back up):
// in a call answered here whose connections all died, it rejoins.
function checkCall() {
  if (!app.machine || app.state !== "in_call" || app.rejoining || app.hub === app.user || !app.linkUp) return;
  if (!media.alive()) rejoin();
}

// reloaded runs once signed in after the app reloaded during a call. A call
// answered here is taken back: the hub keeps this user's place for a while
// (docs/protocol.md, rejoin). A call placed from here ended with the page
// (its hub was this page): the app says so and offers to call again.
function reloaded() {
  const raw = sessionStorage.getItem(CALL_KEY);
  sessionStorage.removeItem(CALL_KEY);
  if (!raw) return;
  let c;
  try {
    c = JSON.parse(raw);
  } catch {
    return;
  }
  if (!c || Date.now() - c.at > 10 * 60 * 1000) return;
  if (c.rejoin && ID.test(c.call || "") && ID.test(c.hub || "") && c.hub !== app.user && app.state === "idle") {
    app.rejoining = true;
    app.peer = c.hub;
    app.media = c.media === "audio" ? "audio" : "video";
    app.callStart = Number(c.start) || 0;
    sessionStorage.setItem(CALL_KEY, raw); // a reload while rejoining tries again
    post({ type: "rejoin", call: c.call, hub: c.hub, media: app.media });
    return;
  }
  const peer = c.hub && c.hub !== app.user ? c.hub : c.peer;
  if (!peer || !app.cfg.directory.some((e) => e.user === peer)) return;
  $("reload-text").textContent = `The call with ${nameOf(peer)} ended when the app reloaded.`;
  $("reload-call").onclick = () => placeCall(peer, c.media === "audio" ? "audio" : "video");
  $("reload-card").hidden = false;
}

let micMuted = false;
let speakerOn = true;

// tokenFrom reads a token pasted as it is or inside a sign-in link.
function tokenFrom(text) {
  const m = /[#&]token=([^&\s]+)/.exec(text);
  return m ? decodeURIComponent(m[1]) : text.trim();
}

function bindUI() {
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signInError("");
    signIn(tokenFrom($("token").value)).catch((err) => signInError(`Could not start: ${err.message || err}`));
  });
  $("retry").onclick = () => location.reload();
  $("menu-open").onclick = () => { settings.render(); openDialog($("menu")); };
  $("menu-close").onclick = () => closeDialog($("menu"));
  $("visitor-close").onclick = () => closeDialog($("visitor"));
  $("signout").onclick = () => { closeDialog($("menu")); signOut(""); };
  $("install").onclick = async () => {
    const p = settings.installPrompt;
    settings.installPrompt = null;
    if (p) {
      p.prompt();
      await p.userChoice.catch(() => {});
    }
    settings.render();
  };
  window.addEventListener("beforeinstallprompt", (e) => {
    e.preventDefault();
    settings.installPrompt = e;
    settings.render();
  });
  $("use-here").onclick = () => {
    app.kicked = false;
    banner("");
    signIn(app.token).catch((err) => signInError(`Could not start: ${err.message || err}`));
  };
  $("accept").onclick = () => {
    banner("");
    app.media = app.invited ? app.invited.media : "video";
    post({ type: "accept" });
  };
  $("incoming-door").onclick = () => {
    banner("");
    app.openOnAnswer = true;
    app.media = app.invited ? app.invited.media : "video";
    post({ type: "accept" });
  };
  $("reject").onclick = () => post({ type: "reject" });
  $("hangup").onclick = () => post({ type: "hangup" });
  $("open-door").onclick = () => { app.doorTries = 3; post({ type: "open_door" }); };
  $("audio-only").onclick = () => post({ type: "switch_audio" });
  $("mute").onclick = () => {
    micMuted = !micMuted;
    $("mute").setAttribute("aria-pressed", String(micMuted));
    $("mute").querySelector("span").textContent = micMuted ? "Unmute" : "Mute";
    post({ type: "control", control: "mic_mute", on: micMuted });
  };
  $("speaker").onclick = () => {
    speakerOn = !speakerOn;
    $("speaker").setAttribute("aria-pressed", String(speakerOn));
    $("speaker").querySelector("span").textContent = speakerOn ? "Speaker on" : "Speaker off";
    post({ type: "control", control: "hands_free", on: speakerOn });
  };
  // Leaving the page in a call (a reload, a closed tab). A call answered
  // here stays on: the hub keeps this user's place for a while, and the
  // reloaded page takes it back. Any other call is hung up, so the other
  // side learns at once; the reload says it ended.
  window.addEventListener("pagehide", (ev) => {
    if (!app.machine || app.state === "idle" || ev.persisted) return;
    const saved = sessionStorage.getItem(CALL_KEY);
    if (saved && app.hub !== app.user && (app.state === "in_call" || app.rejoining)) {
      sessionStorage.setItem(CALL_KEY, JSON.stringify({ ...JSON.parse(saved), rejoin: true }));
      return;
    }
    post({ type: "hangup" });
    if (saved) sessionStorage.setItem(CALL_KEY, saved);
  });
  // Back from the background (or from the back-forward cache): a call
  // whose connections died meanwhile is rejoined.
  document.addEventListener("visibilitychange", () => { if (!document.hidden) checkCall(); });
  window.addEventListener("pageshow", (ev) => { if (ev.persisted) checkCall(); });
  // Unlock audio output on the first tap anywhere (ringtones need it).
  document.addEventListener("pointerdown", () => {
    try {
      ringer.ctx = ringer.ctx || new AudioContext();
      ringer.ctx.resume().catch(() => {});
    } catch { /* no Web Audio */ }
  }, { once: true });
  // The visitor log while the app is open.
  setInterval(() => { if (app.linkUp && app.state === "idle" && !document.hidden) visitorLog.refresh(); }, 60000);
}

async function boot() {
  bindUI();
  if ("serviceWorker" in navigator && window.isSecureContext) {
    navigator.serviceWorker.register("sw.js").catch((err) => console.warn("intercomd: service worker:", err));
  }
  // A sign-in link carries the token in the fragment, which never reaches
  // a server or a log: keep it, then take it out of the address bar.
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  ringPush.fromFragment();
  const token = localStorage.getItem(TOKEN_KEY);
  app.loading = !!token;
  render();
  if (token) {
    signIn(token).catch((err) => signInError(`Could not start: ${err.message || err}`));
  }
  loadWasm().catch((err) => banner(`Could not load the app: ${err.message || err}`, "error"));
}

// ringPush rings this phone when the app is closed: Web Push to the
// device's service worker (sw.js shows the notification and its Answer and
// Decline), subscribed on a tap once signed in. Opened by Answer
// (#answer=<call>), the app asks the device to deliver that call's
// invitation again once connected, and answers it.
const ringPush = {
  answer: "",
  key: "",
  deviceID() {
    let id = localStorage.getItem("intercomd.device");
    if (!id) {
      const b = crypto.getRandomValues(new Uint8Array(12));
      id = btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      localStorage.setItem("intercomd.device", id);
    }
    return id;
  },
  fromFragment() {
    const m = /(?:^|[#&])answer=([A-Za-z0-9_-]{1,64})/.exec(location.hash);
    if (m) {
      this.answer = m[1];
      history.replaceState(null, "", location.pathname + location.search);
    }
    // Answer tapped while the app was open in the background.
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.addEventListener("message", (e) => {
        if (!e.data || e.data.type !== "answer") return;
        if (app.state === "ringing" && app.invited && app.invited.call === e.data.call) {
          post({ type: "accept" });
          return;
        }
        this.answer = e.data.call;
        if (app.linkUp) this.reinvite();
      });
    }
  },
  // reinvite asks the device for the invitation of the call to answer
  // again (it was sent while this app was closed).
  reinvite() {
    this.api("POST", `api/calls/${this.answer}/invite`).then((r) => {
      if (r.status === 410) {
        this.answer = "";
        banner("That call is over.");
      }
    }).catch(() => {});
  },
  api(method, path, body) {
    return fetch(path, {
      method,
      headers: { "Authorization": `Bearer ${app.token}`, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
  },
  // linked: signed in and connected. Hand the token to the service worker
  // (for Decline), re-send a subscription the phone already allowed, ask
  // for the call to answer, and offer push where it is not on yet.
  async linked() {
    if (this.answer) this.reinvite();
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !window.isSecureContext) return;
    try {
      const info = await (await fetch("api/push", { cache: "no-store" })).json();
      if (!info.enabled) return;
      this.key = info.key;
      const reg = await navigator.serviceWorker.ready;
      reg.active && reg.active.postMessage({ type: "token", token: app.token });
      if (Notification.permission === "granted") {
        await this.subscribe(reg);
      } else if (Notification.permission === "default") {
        const b = $("push-enable");
        b.hidden = false;
        b.onclick = () => this.enable().catch((err) => banner(`Notifications: ${err.message || err}`, "error"));
      }
    } catch (err) {
      console.warn("intercomd: push:", err);
    }
  },
  // enable runs on the tap: the browser shows its permission prompt.
  async enable() {
    const perm = await Notification.requestPermission();
    $("push-enable").hidden = true;
    if (perm !== "granted") {
      settings.render();
      banner("Without notifications this phone rings only while the app is open.");
      return;
    }
    await this.subscribe(await navigator.serviceWorker.ready);
    settings.render();
    banner("This phone now rings even when the app is closed.");
  },
  async subscribe(reg) {
    const raw = atob(this.key.replace(/-/g, "+").replace(/_/g, "/"));
    const key = Uint8Array.from(raw, (c) => c.charCodeAt(0));
    let sub = await reg.pushManager.getSubscription();
    if (sub && sub.options.applicationServerKey &&
        new Uint8Array(sub.options.applicationServerKey).toString() !== key.toString()) {
      await sub.unsubscribe(); // made for another device's key
      sub = null;
    }
    sub = sub || await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    const r = await this.api("POST", "api/push/subscriptions", { device: this.deviceID(), subscription: sub.toJSON() });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `HTTP ${r.status}`);
  },
};

// tokenRenew keeps the sign-in alive: once connected, and every six hours,
// it asks the device for a fresh token (the device renews one whose life
// is two-thirds gone, else returns the same), and uses it from then on.
const tokenRenew = {
  timer: 0,
  start() {
    if (!this.timer) this.timer = setInterval(() => this.renew(), 6 * 3600 * 1000);
    this.renew();
  },
  async renew() {
    if (!app.token) return;
    try {
      const r = await ringPush.api("POST", "api/token");
      if (!r.ok) return;
      const { token } = await r.json();
      if (!token || token === app.token || !parseToken(token)) return;
      app.token = token;
      localStorage.setItem(TOKEN_KEY, token);
      if (app.client) app.client.options.password = token; // for the next reconnect
      const reg = "serviceWorker" in navigator && await navigator.serviceWorker.getRegistration();
      if (reg && reg.active) reg.active.postMessage({ type: "token", token });
    } catch { /* offline: try again later */ }
  },
};

// For tests and debugging: read-only views and the raw command path (a
// command goes through the same machine as a tap would).
globalThis.intercomd = {
  get state() { return app.state; },
  get user() { return app.user; },
  get call() { return app.call; },
  get linkUp() { return app.linkUp; },
  get log() { return app.log.slice(); },
  get rejoining() { return app.rejoining; },
  get signalOnly() { return app.signalOnly; },
  get pushKey() { return ringPush.key; },
  get token() { return app.token; },
  renewToken() { return tokenRenew.renew(); },
  get visitors() { return app.visitors.slice(); },
  refreshVisitors() { return visitorLog.refresh(); },
  peerConnections() { return [...media.peers.values()].map((p) => p.pc).filter(Boolean); },
  do(input) { post(input); },
};

boot();
