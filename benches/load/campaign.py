#!/usr/bin/env python3
"""Progressive campaign benchmark: N SIPp agents, M contacts, one SIPp carrier answering.

Registers N agents (one SIPp UAS answers for all of them, at once), uploads a campaign of M
contacts (numbers 3000000.. routed to one carrier trunk, where a SIPp UAS answers, talks for
--talk-ms and hangs up), starts it, and samples GET /api/campaigns/{id} and /api/agents once a
second until every contact is settled (or --seconds pass). Prints the dialling rate (attempts
and answered contacts per second), agent occupancy (share of logged-in agents on a call, mean
over the samples) and switchboard CPU/RSS. Measured, never asserted.

  benches/load/campaign.py                                    # 100 agents, 10,000 contacts
  benches/load/campaign.py --agents 10 --contacts 200 --talk-ms 200   # a quick look
"""
import argparse, json, os, signal, subprocess, sys, tempfile, time, urllib.request

from sip_load import HERE, ROOT, free_port, proc_stat, register_agents, wait_options

TOKEN = "bench-admin"


def node_config(work, sip_port, http_port, carrier_port, agents):
    agent_tables = "\n".join(
        f'[[agent]]\nid = "{8000 + i}"\nname = "Load {i}"\npassword = "pw{8000 + i}"\nskills = {{ support = 5 }}\n'
        for i in range(agents))
    return f"""
[sip]
listen_udp = ["127.0.0.1:{sip_port}"]
listen_tcp = []
max_calls = 1000000
ring_timeout_s = 30
[http]
listen = "127.0.0.1:{http_port}"
[[http.token]]
token = "{TOKEN}"
role = "admin"
[cdr]
dir = "{work}/cdr"
[media]
rtp_port_min = 40000
rtp_port_max = 44000
[security]
rate = 1000000
burst = 1000000
[[trunk]]
name = "carrier"
gateway = "127.0.0.1:{carrier_port}"
allow = ["127.0.0.0/8"]
[[route]]
prefix = "3"
trunks = ["carrier"]
caller_id = "4000100"
[outbound]
max_concurrent = 100000
[[queue]]
name = "support"
skills = {{ support = 1 }}
wrap_up_s = 0
[acd]
not_ready_reasons = ["missed"]
{agent_tables}
"""


def api(http_port, method, path, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--contacts", type=int, default=10000)
    ap.add_argument("--talk-ms", type=int, default=1000, help="how long each customer talks")
    ap.add_argument("--seconds", type=int, default=1800, help="give up after this long")
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "switchboard"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sb-campaign-")
    sip_port, http_port, agent_port, carrier_port = free_port(), free_port(), free_port(), free_port()
    with open(f"{work}/campaign.toml", "w") as f:
        f.write(node_config(work, sip_port, http_port, carrier_port, args.agents))
    sb = subprocess.Popen([args.binary, "--log-level", "warn", "run", "--config", f"{work}/campaign.toml"],
                          stdout=open(f"{work}/switchboard.log", "w"), stderr=subprocess.STDOUT)
    procs = []
    try:
        wait_options(sip_port)
        common = ["-nostdin", "-i", "127.0.0.1", "-buff_size", "4194304"]
        register_agents(agent_port, sip_port, [(str(8000 + i), f"pw{8000 + i}") for i in range(args.agents)])
        limit = ["-timeout", str(args.seconds + 60)]
        procs.append(subprocess.Popen(
            ["sipp", "-sf", f"{HERE}/agent_uas.xml", "-p", str(agent_port), "-mp", str(free_port()),
             "-cp", str(free_port())] + limit + common,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work))
        procs.append(subprocess.Popen(
            ["sipp", "-sf", f"{HERE}/customer_uas.xml", "-p", str(carrier_port), "-mp", str(free_port()),
             "-cp", str(free_port()), "-d", str(args.talk_ms)] + limit + common,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work))
        csv = "number,name\n" + "".join(f"{3000000 + i},contact {i}\n" for i in range(args.contacts))
        created = api(http_port, "POST", "/api/campaigns", {
            "name": "bench", "queue": "support", "mode": "progressive", "max_attempts": 1,
            "retry_s": 60, "contacts_csv": csv})
        campaign = created["id"]
        cpu0, rss0 = proc_stat(sb.pid)
        t0 = time.time()
        api(http_port, "POST", f"/api/campaigns/{campaign}/start")
        occupancy, peak_rss, report = [], rss0, created
        while time.time() - t0 < args.seconds:
            time.sleep(1)  # one sample a second; the node itself never polls
            report = api(http_port, "GET", f"/api/campaigns/{campaign}")
            agents = api(http_port, "GET", "/api/agents")
            agents = agents.get("agents", agents) if isinstance(agents, dict) else agents
            logged_in = [a for a in agents if a.get("state") != "logged-out"]
            on_call = [a for a in logged_in if a.get("state") == "on-call"]
            if logged_in:
                occupancy.append(len(on_call) / len(logged_in))
            peak_rss = max(peak_rss, proc_stat(sb.pid)[1])
            if report.get("finished"):
                break
        elapsed = time.time() - t0
        cpu1, rss1 = proc_stat(sb.pid)
        tally = report.get("tally", {})
        attempts = sum(c.get("attempts", 0) for c in report.get("contacts", []))
        answered = tally.get("answered", 0)
        print(f"agents / contacts   {args.agents} / {args.contacts}, talk {args.talk_ms} ms, progressive")
        print(f"finished            {report.get('finished')} after {elapsed:.1f} s; tally {tally}")
        print(f"dialling rate       {attempts / elapsed:.1f} attempts/s, {answered / elapsed:.1f} answered/s")
        if occupancy:
            print(f"agent occupancy     mean {100 * sum(occupancy) / len(occupancy):.0f} % on a call "
                  f"({len(occupancy)} samples; the ideal is talk / (talk + set-up per contact))")
        print(f"switchboard CPU     {100 * (cpu1 - cpu0) / elapsed:.0f} % of one core (avg over the run)")
        print(f"switchboard RSS     start {rss0 / 1024:.1f} MiB, peak {peak_rss / 1024:.1f} MiB, end {rss1 / 1024:.1f} MiB")
        print(f"work dir            {work}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        sb.send_signal(signal.SIGTERM)
        try:
            sb.wait(timeout=40)
        except subprocess.TimeoutExpired:
            sb.kill()


if __name__ == "__main__":
    main()
