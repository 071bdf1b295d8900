"use strict";
// The agent desktop: state buttons and timer, the screen pop, call buttons, the wrap-up form
// and today's figures, all driven by /api/events (no polling).

let me = null;
let stateSince = Date.now();
let currentCall = null;
// The agent consulted on the current call (attended transfer), while the consult lasts.
let consulting = null;
let connectedCall = false;

// The consult API's refusals, in words (docs/api.md lists the codes).
const consultRefusals = {
  unknown_target: "There is no agent, queue or reachable number by that name.",
  no_ready_agent: "Nobody in that queue is Ready: try again shortly.",
  number_not_allowed: "You may not dial that number.",
  target_not_ready: "That agent is not Ready: they cannot take a consult now.",
  target_unreachable: "That agent has no phone registered.",
  own_call: "You cannot consult yourself.",
  consult_in_progress: "A consult is already going on for this call.",
  no_room: "This call cannot take another party.",
  no_consult: "There is no consult on this call (the colleague may have hung up).",
  consult_not_answered: "The colleague has not answered yet: wait, or cancel the consult.",
  already_transferred: "This call has already been transferred.",
};

const labels = { "ready": "Ready", "not-ready": "Not ready", "logged-out": "Logged out",
  "reserved": "Ringing", "on-call": "On call", "wrap-up": "Wrap-up" };

function showState(state, reason, seconds) {
  const element = document.getElementById("state");
  element.textContent = labels[state] || state;
  element.className = `state ${state}`;
  text("reason", reason ? `(${reason})` : "");
  stateSince = Date.now() - (seconds || 0) * 1000;
}

async function refreshFigures() {
  const f = await api("GET", `/api/agents/${encodeURIComponent(me.agent)}/today`);
  text("fig-calls", String(f.calls));
  text("fig-aht", f.average_handle_s === null ? "–" : clock(f.average_handle_s));
  text("fig-not-ready", clock(f.not_ready_s));
}

async function setState(state, reason) {
  text("control-error", "");
  try {
    const body = reason ? { state, reason } : { state };
    // The new state arrives as an agent-state event; the answer to this request can come
    // after later events (Ready is often followed at once by an offer), so it is not shown.
    await api("POST", `/api/agents/${encodeURIComponent(me.agent)}/state`, body);
  } catch (e) {
    text("control-error", e.message);
  }
}

function callButtons(connected) {
  connectedCall = connected;
  if (!connected) consulting = null;
  for (const id of ["hold", "resume", "transfer"]) document.getElementById(id).disabled = !connected;
  document.getElementById("consult").disabled = !connected || consulting !== null;
  for (const id of ["complete", "conference", "cancel-consult"]) {
    document.getElementById(id).disabled = !connected || consulting === null;
  }
}

/** Consult, complete, conference or cancel on the current call; refusals said in words. */
async function consultAction(action, body, done) {
  text("call-error", "");
  try {
    await api("POST", `/api/calls/${currentCall}/${action}`, body);
    done();
  } catch (e) {
    text("call-error", consultRefusals[e.code] || e.message);
  }
  callButtons(connectedCall);
}

function consult() {
  const to = document.getElementById("consult-to").value.trim();
  if (!to) {
    text("call-error", "Type the id of the agent to consult.");
    return;
  }
  consultAction("consult", { to }, () => {
    consulting = to;
    text("consult-status", `Consulting ${to}: the caller hears music on hold.`);
  });
}

async function showHistory(call) {
  const body = document.querySelector("#history tbody");
  body.innerHTML = "";
  try {
    const answer = await api("GET", `/api/calls/${call}/history`);
    if (answer.previous.length === 0) {
      body.innerHTML = "<tr><td colspan=4>No previous calls</td></tr>";
    }
    for (const past of answer.previous) {
      const row = body.insertRow();
      for (const value of [new Date(past.date).toLocaleString(), past.agent || "–", past.disposition, past.wrap_up || "–"]) {
        row.insertCell().textContent = value;
      }
    }
  } catch (e) {
    body.innerHTML = "";
    body.insertRow().insertCell().textContent = e.message;
  }
}

function onOffered(event) {
  currentCall = event.call;
  document.getElementById("call").className = "call ringing";
  text("call-status", `${event.call} — ringing`);
  text("pop-caller", event.caller || "unknown");
  text("pop-label", event.label ? `${event.label} (priority ${event.priority})` : `normal (${event.priority})`);
  document.getElementById("pop-label").className = event.label ? "vip" : "";
  text("pop-did", event.did);
  text("pop-queue", event.queue);
  text("pop-ivr", event.ivr_path.length ? event.ivr_path.join(" › ") : "–");
  text("pop-wait", clock(event.wait_s));
  document.getElementById("wrap-up").hidden = true;
  text("consult-status", "");
  callButtons(false);
  showHistory(event.call);
}

function onEvent(event) {
  switch (event.type) {
    case "hello": {
      const self = event.agents.find((a) => a.id === me.agent);
      if (self) showState(self.state, self.reason, self.state_seconds);
      // A reload during a call shows the call again.
      const mine = event.calls.find((c) => c.state === "ringing" || c.state === "connected");
      if (mine) {
        onOffered({ call: mine.id, caller: mine.caller, label: mine.label, priority: mine.priority,
          did: mine.did, queue: mine.queue, ivr_path: [], wait_s: mine.wait_s });
        if (mine.state === "connected") onEvent({ type: "call-answered", call: mine.id });
      }
      break;
    }
    case "agent-state":
      showState(event.state, event.reason, 0);
      refreshFigures().catch(() => {});
      break;
    case "call-offered":
      onOffered(event);
      break;
    case "call-answered":
      if (event.call === currentCall) {
        document.getElementById("call").className = "call connected";
        text("call-status", `${event.call} — connected`);
        callButtons(true);
      }
      break;
    case "call-ended":
      if (event.call === currentCall) {
        document.getElementById("call").className = "call ended";
        text("call-status", `${event.call} — ended (${event.outcome})`);
        callButtons(false);
        if (event.outcome === "completed") {
          text("wrap-call", String(event.call));
          text("wrap-result", "");
          document.getElementById("wrap-up").hidden = false;
        }
      }
      refreshFigures().catch(() => {});
      break;
  }
}

async function act(action, body) {
  text("call-error", "");
  try {
    await api("POST", `/api/calls/${currentCall}/${action}`, body);
    if (action === "hold") text("call-status", `${currentCall} — on hold`);
    if (action === "resume") text("call-status", `${currentCall} — connected`);
  } catch (e) {
    text("call-error", e.message);
  }
}

async function start() {
  me = await api("GET", "/api/session");
  text("agent-name", me.name ? `${me.name} (${me.agent})` : me.agent);
  const reasons = document.getElementById("not-ready-reason");
  for (const reason of me.not_ready_reasons) reasons.add(new Option(reason, reason));
  const dispositions = document.getElementById("disposition");
  for (const code of me.dispositions) dispositions.add(new Option(code, code));
  document.getElementById("ready").onclick = () => setState("ready");
  document.getElementById("not-ready").onclick = () => setState("not-ready", reasons.value);
  document.getElementById("log-out").onclick = () => setState("logged-out");
  document.getElementById("sign-out").onclick = signOut;
  document.getElementById("hold").onclick = () => act("hold");
  document.getElementById("resume").onclick = () => act("resume");
  document.getElementById("transfer").onclick = () =>
    act("transfer", { to: document.getElementById("transfer-to").value });
  document.getElementById("consult").onclick = consult;
  document.getElementById("complete").onclick = () => consultAction("complete", undefined, () => {
    text("consult-status", `Transferred to ${consulting}.`);
    consulting = null;
  });
  document.getElementById("conference").onclick = () => consultAction("conference", undefined, () => {
    text("consult-status", `Conference: the caller, you and ${consulting}.`);
  });
  document.getElementById("cancel-consult").onclick = () => consultAction("cancel", undefined, () => {
    text("consult-status", "Consult ended: you are back with the caller.");
    consulting = null;
  });
  document.getElementById("wrap-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const call = document.getElementById("wrap-call").textContent;
    try {
      const saved = await api("POST", `/api/calls/${call}/wrap-up`, {
        disposition: dispositions.value,
        notes: document.getElementById("notes").value,
      });
      text("wrap-result", `Wrap-up saved: ${saved.disposition} (${saved.call_id})`);
    } catch (e) {
      text("wrap-result", `Not saved: ${e.message}`);
    }
  });
  startSoftphone(me);
  connectEvents(onEvent, (up) => text("live", up ? "live" : "reconnecting…"));
  refreshFigures().catch(() => {});
  // Only the on-screen timer ticks; nothing is fetched.
  setInterval(() => text("state-timer", clock((Date.now() - stateSince) / 1000)), 1000);
}

start().catch((e) => text("control-error", e.message));
