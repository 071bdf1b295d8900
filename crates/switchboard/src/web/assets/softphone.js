"use strict";
// The built-in softphone: JsSIP registers over Switchboard's SIP WebSocket listener (RFC 7118)
// as the agent's phone, so the ACD offers it calls like any desk phone; the call's audio is
// the browser's RTCPeerConnection talking DTLS-SRTP to Switchboard's WebRTC media leg.
//
// window.softphone exposes the state and the peer connection (tests read getStats from it).

const softphone = { state: "off", session: null, stream: null, pc: null };
window.softphone = softphone;

function phoneStatus(state, message) {
  softphone.state = state;
  const element = document.getElementById("phone-state");
  element.textContent = message;
  element.className = `phone-state ${state}`;
}

function phoneButtons() {
  const session = softphone.session;
  const ringing = !!session && !session.isEstablished() && !session.isEnded();
  document.getElementById("phone-answer").disabled = !ringing;
  document.getElementById("phone-hangup").disabled = !session || session.isEnded();
}

// Why there is no microphone, in words an agent can act on.
function microphoneProblem(error) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser gives no microphone access here (open the desktop over HTTPS or on this computer).";
  }
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was refused: allow it for this site in the browser, then answer again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found: plug in a headset, then answer again.";
    case "NotReadableError":
      return "The microphone is in use by another program: close it, then answer again.";
    default:
      return `The microphone could not be opened (${error ? error.message || error.name : "unknown error"}).`;
  }
}

async function answerCall() {
  const session = softphone.session;
  if (!session) return;
  text("phone-error", "");
  let stream;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw null;
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  } catch (error) {
    text("phone-error", microphoneProblem(error));
    return; // the call keeps ringing: the agent can fix it and answer, or it rings on
  }
  softphone.stream = stream;
  // Switchboard is ICE-lite with host candidates: no STUN/TURN servers are needed.
  session.answer({ mediaStream: stream, pcConfig: { iceServers: [] } });
  phoneButtons();
}

function endCall() {
  if (softphone.session && !softphone.session.isEnded()) softphone.session.terminate();
}

function callGone(session, why) {
  if (softphone.session !== session) return;
  if (softphone.stream) softphone.stream.getTracks().forEach((track) => track.stop());
  softphone.stream = null;
  document.getElementById("phone-audio").srcObject = null;
  phoneStatus("registered", `Softphone ready (last call ${why})`);
  phoneButtons();
}

function incoming(session) {
  if (softphone.session && !softphone.session.isEnded()) {
    session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
    return;
  }
  softphone.session = session;
  softphone.pc = null;
  phoneStatus("ringing", "Incoming call: answer here");
  session.on("peerconnection", (event) => {
    softphone.pc = event.peerconnection;
    event.peerconnection.addEventListener("track", (track) => {
      document.getElementById("phone-audio").srcObject = track.streams[0] || new MediaStream([track.track]);
    });
  });
  session.on("confirmed", () => { phoneStatus("in-call", "In call"); phoneButtons(); });
  session.on("ended", () => callGone(session, "ended"));
  session.on("failed", (event) => callGone(session, `not connected: ${event.cause}`));
  phoneButtons();
}

function startSoftphone(me) {
  document.getElementById("phone-answer").onclick = answerCall;
  document.getElementById("phone-hangup").onclick = endCall;
  const config = me.softphone;
  if (!config || config.unavailable) {
    phoneStatus("off", `No browser softphone: ${config ? config.unavailable : "not available for this login"}. Use your SIP phone.`);
    return;
  }
  if (typeof RTCPeerConnection === "undefined") {
    phoneStatus("off", "This browser has no WebRTC: use your SIP phone.");
    return;
  }
  const secure = location.protocol === "https:";
  const port = secure ? config.wss_port : config.ws_port;
  if (!port) {
    phoneStatus("off", secure
      ? "No browser softphone: this page is HTTPS and Switchboard has no wss listener."
      : "No browser softphone: Switchboard has only a wss listener; open the desktop over HTTPS.");
    return;
  }
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  const socket = new JsSIP.WebSocketInterface(`${secure ? "wss" : "ws"}://${host}:${port}`);
  const settings = {
    sockets: [socket],
    uri: `sip:${config.user}@${location.hostname}`,
    authorization_user: config.user,
    realm: config.realm,
    register: true,
    register_expires: 300,
    session_timers: false,
  };
  if (config.password) settings.password = config.password;
  else settings.ha1 = config.ha1;
  const ua = new JsSIP.UA(settings);
  phoneStatus("connecting", "Softphone connecting…");
  ua.on("registered", () => phoneStatus("registered", "Softphone ready"));
  ua.on("unregistered", () => phoneStatus("off", "Softphone not registered"));
  ua.on("registrationFailed", (event) => phoneStatus("off", `Softphone not registered: ${event.cause}`));
  ua.on("disconnected", () => phoneStatus("connecting", "Softphone reconnecting…"));
  ua.on("newRTCSession", (event) => { if (event.originator === "remote") incoming(event.session); });
  ua.start();
  softphone.ua = ua;
}
