#!/usr/bin/env python3
"""Drives the agent desktop and the wallboard in headless Chromium (Playwright, system browser).

Run by sip-tests/tests/web.rs, which owns the SIP side. The two talk over lines: this script
prints `STEP <name>` when the browser side is ready for the next SIP action and reads one line
(`go`) from stdin before going on. Any failed expectation raises, so the exit code is non-zero
and the message says what was not seen.

    web_desktop.py BASE_URL AGENT AGENT_PASSWORD SUPERVISOR SUPERVISOR_PASSWORD ADMIN ADMIN_PASSWORD SCREENSHOT_DIR
"""
import sys
import time

from playwright.sync_api import expect, sync_playwright

WAIT_MS = 60_000  # generous: the machine is shared with several builds


def step(name):
    print(f"STEP {name}", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "go":
        raise SystemExit(f"the test driver said {answer!r} after {name}")


def log_in(page, base, login, password):
    page.goto(f"{base}/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#login-button")


def main():
    base, agent, agent_pw, sup, sup_pw, admin, admin_pw, shots = sys.argv[1:9]
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
        )
        # Not logged in: a page sends the browser to the login page.
        anonymous = browser.new_context().new_page()
        anonymous.goto(f"{base}/agent")
        expect(anonymous).to_have_url(f"{base}/login?next=/agent")
        expect(anonymous.locator("#expired")).to_be_hidden()
        # Where an expired session lands (tests/web_api.rs checks the redirect): it says so.
        anonymous.goto(f"{base}/login?expired=1&next=/agent")
        expect(anonymous.locator("#expired")).to_have_text("Your session expired. Log in again.")

        desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        # Wrong password: a clear message, still on the login page.
        log_in(desk, base, agent, "wrong-password")
        expect(desk.locator("#error")).to_have_text("wrong login or password")
        log_in(desk, base, agent, agent_pw)
        expect(desk).to_have_url(f"{base}/agent")
        expect(desk.locator("#live")).to_have_text("live")
        # This node has no SIP WebSocket listener: the page says why there is no softphone.
        expect(desk.locator("#phone-state")).to_contain_text("No browser softphone: no SIP WebSocket listener")
        expect(desk.locator("#phone-toggle")).to_be_hidden()
        # Wrong role: an agent opening the wallboard is told whose page it is.
        wrong = desk.context.new_page()
        response = wrong.goto(f"{base}/wallboard")
        assert response.status == 403, f"wallboard for an agent: HTTP {response.status}"
        expect(wrong.locator("h1")).to_have_text("This page is for supervisors and admins")
        wrong.close()

        desk.select_option("#not-ready-reason", "break")
        desk.click("#not-ready")
        expect(desk.locator("#state")).to_have_text("Not ready")
        expect(desk.locator("#reason")).to_have_text("(break)")

        board = browser.new_context(viewport={"width": 1600, "height": 900}).new_page()
        log_in(board, base, sup, sup_pw)
        expect(board).to_have_url(f"{base}/wallboard")
        expect(board.locator("#agents tr[data-agent='%s'] .agent-state" % agent)).to_have_text("Not ready (break)")

        step("call-me")  # the driver places a trunk call; nobody is ready, so it waits
        expect(board.locator("#waiting tbody tr")).to_have_count(1)
        expect(board.locator("#waiting tbody tr td").nth(2)).to_have_text("2000")
        expect(board.locator("#waiting tbody tr td").nth(3)).to_have_text("VIP (10)")
        expect(board.locator(".queue[data-queue='support'] .num.waiting")).to_have_text("1")
        board.screenshot(path=f"{shots}/wallboard-waiting.png", full_page=True)

        desk.click("#ready")
        # Screen pop: the caller, the number dialled and the queue; the SIP phone answers.
        expect(desk.locator("#pop-caller")).to_have_text("2000")
        expect(desk.locator("#pop-did")).to_have_text("100")
        expect(desk.locator("#pop-queue")).to_have_text("support")
        expect(desk.locator("#pop-label")).to_have_text("VIP (priority 10)")
        expect(desk.locator("#call-status")).to_contain_text("connected")
        expect(desk.locator("#state")).to_have_text("On call")
        expect(desk.locator("#hold")).to_be_enabled()
        expect(desk.locator("#history tbody")).to_contain_text("No previous calls")
        expect(board.locator("#agents tr[data-agent='%s'] .agent-state" % agent)).to_have_text("On call")
        expect(board.locator("#waiting tbody tr")).to_have_count(0)
        expect(board.locator(".queue[data-queue='support'] .num.waiting")).to_have_text("0")
        expect(board.locator(".queue[data-queue='support'] .by-state")).to_contain_text("on call 1")
        board.screenshot(path=f"{shots}/wallboard.png", full_page=True)
        desk.screenshot(path=f"{shots}/agent-desktop-connected.png", full_page=True)

        step("hang-up")  # the driver's caller hangs up
        expect(desk.locator("#call-status")).to_contain_text("ended (completed)")
        expect(desk.locator("#wrap-up")).to_be_visible()
        desk.select_option("#disposition", "escalated")
        desk.fill("#notes", "billing dispute, passed to second line")
        desk.click("#save-wrap-up")
        expect(desk.locator("#wrap-result")).to_contain_text("Wrap-up saved: escalated")
        expect(desk.locator("#fig-calls")).to_have_text("1")
        desk.screenshot(path=f"{shots}/agent-desktop.png")

        # The same caller again: the screen pop lists the first call with its wrap-up.
        expect(desk.locator("#state")).to_have_text("Ready")
        step("call-again")
        expect(desk.locator("#call-status")).to_contain_text("connected")
        expect(desk.locator("#history tbody tr")).to_have_count(1)
        expect(desk.locator("#history tbody tr td").nth(1)).to_have_text(agent)
        expect(desk.locator("#history tbody tr td").nth(2)).to_have_text("answered")
        expect(desk.locator("#history tbody tr td").nth(3)).to_have_text("escalated")
        desk.screenshot(path=f"{shots}/agent-desktop-history.png", full_page=True)

        # Consult from the desktop: an unknown agent is refused in words; agent 1002 (no
        # support skill, so never offered the call itself; its phone is a SIPp UAS) is rung.
        expect(desk.locator("#complete")).to_be_disabled()
        expect(desk.locator("#cancel-consult")).to_be_disabled()
        desk.fill("#consult-to", "1099")
        desk.click("#consult")
        expect(desk.locator("#call-error")).to_have_text("There is no agent, queue or reachable number by that name.")
        desk.fill("#consult-to", agent)
        desk.click("#consult")
        expect(desk.locator("#call-error")).to_have_text("You cannot consult yourself.")
        desk.fill("#consult-to", "1002")
        desk.click("#consult")
        expect(desk.locator("#consult-status")).to_have_text("Consulting 1002: the caller hears music on hold.")
        expect(desk.locator("#call-error")).to_have_text("")
        expect(desk.locator("#consult")).to_be_disabled()
        expect(desk.locator("#complete")).to_be_enabled()
        expect(desk.locator("#conference")).to_be_enabled()
        expect(desk.locator("#cancel-consult")).to_be_enabled()
        # Cancel once 1002's phone has answered (the call's consult leg, as the API lists it).
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            leg = desk.evaluate("""async () => {
              const listed = await api("GET", "/api/calls");
              const legs = listed.calls.flatMap((c) => c.legs);
              return legs.find((l) => l.role === "consult") || null;
            }""")
            if leg and leg["state"] == "answered":
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the consulted phone did not answer: {leg}")
            desk.wait_for_timeout(250)
        desk.screenshot(path=f"{shots}/agent-desktop-consult.png", full_page=True)
        desk.click("#cancel-consult")
        expect(desk.locator("#consult-status")).to_have_text("Consult ended: you are back with the caller.")
        expect(desk.locator("#call-error")).to_have_text("")
        expect(desk.locator("#consult")).to_be_enabled()
        expect(desk.locator("#cancel-consult")).to_be_disabled()
        expect(desk.locator("#call-status")).to_contain_text("connected")
        step("hang-up-again")
        expect(desk.locator("#call-status")).to_contain_text("ended (completed)")

        # An admin changes the agent's state from the wallboard's grid; the desktop follows.
        expect(board.locator(".admin-only").first).to_be_hidden()  # not for supervisors
        boss = browser.new_context().new_page()
        log_in(boss, base, admin, admin_pw)
        expect(boss).to_have_url(f"{base}/wallboard")
        row = boss.locator("#agents tr[data-agent='%s']" % agent)
        row.get_by_role("button", name="Not ready").click()
        expect(row.locator(".agent-state")).to_contain_text("Not ready")
        expect(desk.locator("#state")).to_have_text("Not ready")

        # Logging out of the web ends the session: the API then says so.
        desk.click("#sign-out")
        expect(desk).to_have_url(f"{base}/login")
        status = desk.evaluate("fetch('/api/session').then(r => r.status)")
        assert status == 401, f"/api/session after logout: HTTP {status}"
        browser.close()
    print("STEP done", flush=True)


if __name__ == "__main__":
    main()
