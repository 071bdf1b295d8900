#!/usr/bin/env python3
"""Answers a trunk call in the agent desktop's built-in softphone, in headless Chromium
(Playwright, system browser, fake microphone), and checks with getStats that RTP flows both
ways through the WebRTC leg.

Run by sip-tests/tests/webrtc.rs, which owns the SIP and RTP side. As in web_desktop.py, this
script prints `STEP <name>` when the driver may act and reads `go` before going on; it prints
`STATS {json}` with the page's RTP counters. Any failed expectation raises (non-zero exit).

    webrtc_softphone.py BASE_URL AGENT AGENT_PASSWORD SCREENSHOT_DIR
"""
import json
import sys
import time

from playwright.sync_api import expect, sync_playwright

WAIT_MS = 60_000  # generous: the machine is shared with several builds
PACKETS = 25  # half a second of 20 ms packets each way is plenty to call it flowing

RTP_COUNTS = """async () => {
  const pc = window.softphone && window.softphone.pc;
  if (!pc) return null;
  const counts = { received: 0, sent: 0, codec: null, state: pc.connectionState };
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") counts.received += s.packetsReceived || 0;
    if (s.type === "outbound-rtp" && s.kind === "audio") {
      counts.sent += s.packetsSent || 0;
      counts.ssrc = s.ssrc;
    }
    if (s.type === "codec" && !counts.codec) counts.codec = s.mimeType;
  });
  return counts;
}"""


def step(name):
    print(f"STEP {name}", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "go":
        raise SystemExit(f"the test driver said {answer!r} after {name}")


def main():
    base, agent, agent_pw, shots = sys.argv[1:5]
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            # The HTTPS variant uses the test's self-signed certificate (page and wss).
            args=["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  "--ignore-certificate-errors"],
        )
        desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        desk.on("console", lambda m: print(f"console: {m.text}", file=sys.stderr, flush=True))
        desk.goto(f"{base}/login")
        desk.fill("#login", agent)
        desk.fill("#password", agent_pw)
        desk.click("#login-button")
        expect(desk).to_have_url(f"{base}/agent")
        expect(desk.locator("#live")).to_have_text("live")
        # The browser is not the agent's phone until the agent says so; then the page registers
        # its own SIP phone over the WebSocket listener (and remembers the choice).
        expect(desk.locator("#phone-state")).to_have_text("Softphone off: calls go to your SIP phone")
        desk.click("#phone-toggle")
        expect(desk.locator("#phone-state")).to_have_text("Softphone ready")
        expect(desk.locator("#phone-toggle")).to_have_text("Stop browser phone")
        desk.click("#ready")
        expect(desk.locator("#state")).to_have_text("Ready")

        step("call-me")  # the driver places a trunk call with RTP
        expect(desk.locator("#phone-state")).to_have_text("Incoming call: answer here")
        expect(desk.locator("#pop-caller")).to_have_text("2000")
        expect(desk.locator("#phone-answer")).to_be_enabled()
        # No microphone the first time (refused permission): a clear message, still ringing.
        desk.evaluate("""() => {
          const media = navigator.mediaDevices;
          const real = media.getUserMedia.bind(media);
          media.getUserMedia = () => {
            media.getUserMedia = real;
            return Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
          };
        }""")
        desk.click("#phone-answer")
        expect(desk.locator("#phone-error")).to_have_text(
            "Microphone access was refused: allow it for this site in the browser, then answer again.")
        expect(desk.locator("#phone-state")).to_have_text("Incoming call: answer here")
        desk.screenshot(path=f"{shots}/agent-softphone-no-microphone.png", full_page=True)
        desk.click("#phone-answer")
        expect(desk.locator("#phone-state")).to_have_text("In call")
        expect(desk.locator("#phone-error")).to_have_text("")
        # getStats is a promise, which wait_for_function would take as truthy: poll it here.
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            counts = desk.evaluate(RTP_COUNTS)
            if counts and counts["received"] >= PACKETS and counts["sent"] >= PACKETS:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"RTP did not flow both ways in the page: {counts}")
            desk.wait_for_timeout(250)
        print("STATS " + json.dumps(counts), flush=True)
        expect(desk.locator("#call-status")).to_contain_text("connected")
        desk.screenshot(path=f"{shots}/agent-softphone-in-call.png", full_page=True)

        step("rtp-flows")  # the driver has counted RTP at the trunk too
        # JsSIP's own hold and resume (re-INVITEs with the same ICE and DTLS): JsSIP hangs up
        # when a re-INVITE is refused, so the call still being up after each is the answer.
        desk.evaluate("() => window.softphone.session.hold()")
        desk.wait_for_function("() => window.softphone.session.isOnHold().local", timeout=WAIT_MS)
        step("held")  # the driver hears music on hold at the trunk
        expect(desk.locator("#phone-state")).to_have_text("In call")
        desk.evaluate("() => window.softphone.session.unhold()")
        desk.wait_for_function("() => !window.softphone.session.isOnHold().local", timeout=WAIT_MS)
        before = desk.evaluate(RTP_COUNTS)["received"]
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            counts = desk.evaluate(RTP_COUNTS)
            if counts and counts["received"] >= before + PACKETS:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no RTP in the page after the resume: {before} then {counts}")
            desk.wait_for_timeout(250)
        expect(desk.locator("#phone-state")).to_have_text("In call")
        step("resumed")  # the driver hears the browser again at the trunk
        desk.click("#phone-hangup")
        expect(desk.locator("#phone-state")).to_contain_text("Softphone ready")
        expect(desk.locator("#call-status")).to_contain_text("ended")
        # A reload keeps the browser as the phone; turning it off unregisters it.
        desk.reload()
        expect(desk.locator("#phone-state")).to_have_text("Softphone ready")
        desk.click("#phone-toggle")
        expect(desk.locator("#phone-state")).to_have_text("Softphone off: calls go to your SIP phone")
        step("done")
        browser.close()


if __name__ == "__main__":
    main()
