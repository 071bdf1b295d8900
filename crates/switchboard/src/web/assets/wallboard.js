"use strict";
// The wallboard: queue tiles, waiting calls and the agent grid, kept current by /api/events.
// The only timer redraws the "for" columns from times already known; nothing is polled.

let me = null;
const agents = new Map();   // id -> {id, name, state, reason, since, calls_answered}
const waiting = new Map();  // call -> {call, queue, caller, priority, label, since}
const labels = { "ready": "Ready", "not-ready": "Not ready", "logged-out": "Logged out",
  "reserved": "Ringing", "on-call": "On call", "wrap-up": "Wrap-up" };

function drawQueues(queues) {
  const section = document.getElementById("queues");
  section.innerHTML = "";
  for (const q of queues) {
    const tile = document.createElement("div");
    tile.className = "queue" + (q.waiting > 0 ? " busy" : "");
    tile.dataset.queue = q.name;
    const a = q.agents;
    tile.innerHTML = `<h2></h2>
      <div class="tiles">
        <div><span class="num waiting">${q.waiting}</span><span>waiting</span></div>
        <div><span class="num">${q.longest_wait_s === null ? "–" : clock(q.longest_wait_s)}</span><span>longest wait</span></div>
        <div><span class="num">${percent(q.service_level)}</span><span>service level</span></div>
        <div><span class="num">${percent(q.answer_rate)}</span><span>answered</span></div>
        <div><span class="num">${percent(q.abandon_rate)}</span><span>abandoned</span></div>
      </div>
      <p class="by-state">ready ${a.ready} · ringing ${a.reserved} · on call ${a.on_call} · wrap-up ${a.wrap_up} · not ready ${a.not_ready} · logged out ${a.logged_out}</p>`;
    tile.querySelector("h2").textContent = q.name;
    section.appendChild(tile);
  }
}

function drawAgents() {
  const body = document.querySelector("#agents tbody");
  body.innerHTML = "";
  for (const agent of [...agents.values()].sort((x, y) => x.id.localeCompare(y.id))) {
    const row = body.insertRow();
    row.dataset.agent = agent.id;
    row.className = agent.state;
    row.insertCell().textContent = agent.id;
    row.insertCell().textContent = agent.name || "";
    const state = row.insertCell();
    state.className = "agent-state";
    state.textContent = (labels[agent.state] || agent.state) + (agent.reason ? ` (${agent.reason})` : "");
    const since = row.insertCell();
    since.className = "since";
    since.dataset.since = agent.since;
    since.textContent = clock((Date.now() - agent.since) / 1000);
    row.insertCell().textContent = agent.calls_answered ?? "";
    const cell = row.insertCell();
    cell.className = "admin-only";
    if (me.role === "admin") {
      for (const [label, body] of [["Ready", { state: "ready" }], ["Not ready", { state: "not-ready", reason: me.not_ready_reasons[0] }], ["Log out", { state: "logged-out" }]]) {
        const button = document.createElement("button");
        button.textContent = label;
        button.onclick = () => api("POST", `/api/agents/${encodeURIComponent(agent.id)}/state`, body)
          .then(() => text("grid-error", ""), (e) => text("grid-error", `${agent.id}: ${e.message}`));
        cell.appendChild(button);
      }
    }
  }
}

function drawWaiting() {
  const body = document.querySelector("#waiting tbody");
  body.innerHTML = "";
  for (const call of waiting.values()) {
    const row = body.insertRow();
    row.dataset.call = call.call;
    for (const value of [call.call, call.queue, call.caller, call.label ? `${call.label} (${call.priority})` : call.priority]) {
      row.insertCell().textContent = value;
    }
    const since = row.insertCell();
    since.className = "since";
    since.dataset.since = call.since;
  }
  tick();
}

function tick() {
  text("clock", new Date().toLocaleTimeString());
  for (const cell of document.querySelectorAll("td.since")) {
    cell.textContent = clock((Date.now() - Number(cell.dataset.since)) / 1000);
  }
}

function onEvent(event) {
  switch (event.type) {
    case "hello":
      agents.clear();
      for (const a of event.agents) agents.set(a.id, { ...a, since: Date.now() - a.state_seconds * 1000 });
      drawAgents();
      drawQueues(event.queues);
      waiting.clear();
      for (const call of event.calls.filter((c) => c.state === "queued")) {
        waiting.set(call.id, { call: call.id, queue: call.queue, caller: call.caller,
          priority: call.priority, label: call.label, since: Date.now() - call.wait_s * 1000 });
      }
      drawWaiting();
      break;
    case "queues":
      drawQueues(event.queues);
      break;
    case "agent-state": {
      const agent = agents.get(event.agent) || { id: event.agent };
      Object.assign(agent, { state: event.state, reason: event.reason, since: Date.now() });
      agents.set(event.agent, agent);
      drawAgents();
      break;
    }
    case "call-queued":
      waiting.set(event.call, { ...event, since: Date.now() });
      drawWaiting();
      break;
    case "call-answered": {
      waiting.delete(event.call);
      const agent = agents.get(event.agent);
      if (agent) agent.calls_answered = (agent.calls_answered || 0) + 1;
      drawWaiting();
      drawAgents();
      break;
    }
    case "call-ended":
      waiting.delete(event.call);
      drawWaiting();
      break;
  }
}

async function start() {
  me = await api("GET", "/api/session");
  text("who", `${me.login} (${me.role})`);
  document.body.classList.toggle("is-admin", me.role === "admin");
  document.getElementById("sign-out").onclick = signOut;
  connectEvents(onEvent, (up) => text("live", up ? "live" : "reconnecting…"));
  setInterval(tick, 1000);
  tick();
}

start().catch((e) => text("grid-error", e.message));
