"use strict";
// Shared by the desktop and the wallboard: API calls with clear errors, the event socket,
// and time formatting.

/** Calls the API; throws an Error with the API's message and `code`. A lost session goes to login. */
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (response.status === 401) {
    const expired = answer.error && answer.error.code === "session_expired";
    location.href = `/login?${expired ? "expired=1&" : ""}next=${encodeURIComponent(location.pathname)}`;
    throw new Error("not logged in");
  }
  if (!response.ok) {
    const error = new Error((answer.error && answer.error.message) || `HTTP ${response.status}`);
    // The stable code, for pages that say what it means in their own words.
    error.code = answer.error && answer.error.code;
    throw error;
  }
  return answer;
}

/** Opens /api/events and hands every event to onEvent; reconnects after a drop. */
function connectEvents(onEvent, onStatus) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/events`);
  socket.onopen = () => onStatus && onStatus(true);
  socket.onmessage = (message) => {
    try { onEvent(JSON.parse(message.data)); } catch (e) { console.error(e); }
  };
  socket.onclose = () => {
    onStatus && onStatus(false);
    // A closed socket may mean the session ended: the session check sends us to login.
    api("GET", "/api/session").then(() => setTimeout(() => connectEvents(onEvent, onStatus), 2000), () => {});
  };
  return socket;
}

/** 75 -> "1:15", 3700 -> "1:01:40". */
function clock(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return (h > 0 ? `${h}:` : "") + `${mm}:${String(s).padStart(2, "0")}`;
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 100)}%`;
}

function text(id, value) {
  const element = document.getElementById(id);
  if (element) element.textContent = value;
}

async function signOut() {
  await fetch("/api/logout", { method: "POST" });
  location.href = "/login";
}
