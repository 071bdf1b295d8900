"use strict";
// The login form: POST /api/login, then the page for the role (or ?next=).
const params = new URLSearchParams(location.search);
if (params.get("expired")) document.getElementById("expired").hidden = false;
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const body = {
    login: document.getElementById("login").value,
    password: document.getElementById("password").value,
  };
  let response;
  try {
    response = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    error.textContent = "The server cannot be reached.";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    error.textContent = (answer.error && answer.error.message) || `Login failed (HTTP ${response.status})`;
    return;
  }
  const home = answer.role === "agent" ? "/agent" : "/wallboard";
  const next = params.get("next");
  location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : home;
});
