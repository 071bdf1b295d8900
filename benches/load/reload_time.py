#!/usr/bin/env python3
"""Configuration reload time with many agents (issue 17's benchmark): starts the release binary
on a file with N agents (default 10,000) spread over Q queues, then times `POST /api/reload`
from request to answer for a series of edits, each applied to the file before its reload:

  unchanged       the same file again (read + check + diff only)
  add agent       one agent more
  change skills   every 10th agent's skill level changed
  change queues   every queue's max wait changed
  remove agents   the last 100 agents removed

and prints each time with the process's RSS and the machine's load average. Speed is measured
here, never asserted: this is a benchmark, not a test.

  benches/load/reload_time.py --agents 10000 --queues 50
"""
import argparse, json, os, re, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sip_load import ROOT, free_port, proc_stat, wait_options  # noqa: E402

TOKEN = "bench-reload-token"


def config(work, sip_port, http_port, agents, queues, level_of, max_wait_s):
    queue_tables = "\n".join(
        f'[[queue]]\nname = "q{q}"\nskills = {{ s{q} = 1 }}\nmax_wait_s = {max_wait_s}\n'
        for q in range(queues))
    agent_tables = "\n".join(
        f'[[agent]]\nid = "{10000 + i}"\nname = "Agent {i}"\npassword = "pw{i}"\n'
        f'skills = {{ s{i % queues} = {level_of(i)}, s{(i + 1) % queues} = 3 }}\n'
        for i in agents)
    return f"""
[sip]
listen_udp = ["127.0.0.1:{sip_port}"]
listen_tcp = []
[http]
listen = "127.0.0.1:{http_port}"
[[http.token]]
name = "bench"
token = "{TOKEN}"
role = "admin"
[cdr]
dir = "{work}/cdr"
[[trunk]]
name = "bench"
allow = ["127.0.0.0/8"]
[[number]]
did = "100"
queue = "q0"
{queue_tables}
{agent_tables}
"""


def reload(http_port):
    request = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/api/reload", data=b"", method="POST",
        headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = answer.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(body or b"{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--queues", type=int, default=50)
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchboard"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sb-reload-")
    sip_port, http_port = free_port(), free_port()
    path = f"{work}/reload.toml"
    everyone = range(args.agents)

    def write(agents, level_of=lambda i: 5, max_wait_s=300):
        with open(path, "w") as f:
            f.write(config(work, sip_port, http_port, agents, args.queues, level_of, max_wait_s))

    write(everyone)
    started = time.perf_counter()
    sb = subprocess.Popen([args.binary, "--log-level", "warn", "run", "--config", path],
                          stdout=open(f"{work}/switchboard.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_options(sip_port, deadline=120)
        print(f"agents {args.agents}, queues {args.queues}, binary {args.binary}")
        print(f"start to ready          {time.perf_counter() - started:8.3f} s")
        steps = [
            ("unchanged", lambda: write(everyone)),
            ("add agent", lambda: write(range(args.agents + 1))),
            ("change skills", lambda: write(range(args.agents + 1), lambda i: 7 if i % 10 == 0 else 5)),
            ("change queues", lambda: write(range(args.agents + 1), lambda i: 7 if i % 10 == 0 else 5, 600)),
            ("remove agents", lambda: write(range(args.agents - 99), lambda i: 7 if i % 10 == 0 else 5, 600)),
        ]
        for name, edit in steps:
            edit()
            elapsed, answer = reload(http_port)
            changes = answer.get("changes", answer.get("error", answer))
            summary = f"{len(changes)} changes" if isinstance(changes, list) else str(changes)[:100]
            _, rss = proc_stat(sb.pid)
            print(f"{name:<22}  {elapsed * 1000:9.1f} ms   {summary:<40}  RSS {rss / 1024:.1f} MiB")
        with open("/proc/loadavg") as f:
            print("load average            " + " ".join(f.read().split()[:3]))
    finally:
        sb.terminate()
        try:
            sb.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sb.kill()
    log = open(f"{work}/switchboard.log").read()
    errors = [line for line in log.splitlines() if re.search(r"\bERROR\b|panicked", line)]
    if errors:
        print("switchboard logged errors:\n" + "\n".join(errors[:10]))


if __name__ == "__main__":
    main()
