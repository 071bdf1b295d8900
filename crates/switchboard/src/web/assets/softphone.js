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
  if (softphone.ua) phoneStatus("registered", `Softphone ready (last call ${why})`);
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

// Where the softphone registers, or why it cannot (shown to the agent).
function softphoneSettings(config) {
  if (!config || config.unavailable) {
    return { problem: `No browser softphone: ${config ? config.unavailable : "not available for this login"}. Use your SIP phone.` };
  }
  if (typeof RTCPeerConnection === "undefined") {
    return { problem: "This browser has no WebRTC: use your SIP phone." };
  }
  const secure = location.protocol === "https:";
  const port = secure ? config.wss_port : config.ws_port;
  if (!port) {
    return { problem: secure
      ? "No browser softphone: this page is HTTPS and Switchboard has no wss listener."
      : "No browser softphone: Switchboard has only a wss listener; open the desktop over HTTPS." };
  }
  const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
  const settings = {
    sockets: [new JsSIP.WebSocketInterface(`${secure ? "wss" : "ws"}://${host}:${port}`)],
    uri: `sip:${config.user}@${location.hostname}`,
    authorization_user: config.user,
    realm: config.realm,
    register: true,
    register_expires: 300,
    session_timers: false,
  };
  if (config.password) settings.password = config.password;
  else settings.ha1 = config.ha1;
  return { settings };
}

function softphoneOn(settings) {
  const ua = new JsSIP.UA(settings);
  phoneStatus("connecting", "Softphone connecting…");
  ua.on("registered", () => phoneStatus("registered", "Softphone ready"));
  ua.on("unregistered", () => phoneStatus("off", "Softphone off: calls go to your SIP phone"));
  ua.on("registrationFailed", (event) => phoneStatus("off", `Softphone not registered: ${event.cause}`));
  ua.on("disconnected", () => { if (softphone.ua === ua) phoneStatus("connecting", "Softphone reconnecting…"); });
  ua.on("newRTCSession", (event) => { if (event.originator === "remote") incoming(event.session); });
  ua.start();
  softphone.ua = ua;
}

function softphoneOff() {
  const ua = softphone.ua;
  softphone.ua = null;
  endCall();
  if (ua) ua.stop(); // unregisters: the ACD offers calls to the agent's other phones only
  phoneStatus("off", "Softphone off: calls go to your SIP phone");
}

// The browser becomes the agent's phone only when the agent turns it on (remembered in this
// browser): an agent with a desk phone who opens the desktop keeps getting calls there.
function startSoftphone(me) {
  document.getElementById("phone-answer").onclick = answerCall;
  document.getElementById("phone-hangup").onclick = endCall;
  const toggle = document.getElementById("phone-toggle");
  const { problem, settings } = softphoneSettings(me.softphone);
  if (problem) {
    phoneStatus("off", problem);
    toggle.hidden = true;
    return;
  }
  const show = () => { toggle.textContent = softphone.ua ? "Stop browser phone" : "Use browser phone"; };
  toggle.onclick = () => {
    if (softphone.ua) {
      localStorage.removeItem("switchboard-softphone");
      softphoneOff();
    } else {
      localStorage.setItem("switchboard-softphone", "on");
      softphoneOn(settings);
    }
    show();
  };
  if (localStorage.getItem("switchboard-softphone") === "on") softphoneOn(settings);
  else phoneStatus("off", "Softphone off: calls go to your SIP phone");
  show();
}
