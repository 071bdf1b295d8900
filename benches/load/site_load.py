#!/usr/bin/env python3
"""Two-node site benchmark: the shipped Kamailio front (deploy/kamailio, addresses adapted) on
127.0.0.20 before two Switchboard nodes on 127.0.0.11 and 127.0.0.12 (docs/site.md).

Prints, on this machine (front, nodes and SIPp share its cores, so the figures are the front's
added cost, not a site's capacity):
  1. the front's added latency: INVITE -> 200 of sequential IVR calls, through the front and
     directly to node a (microseconds, from this script's socket);
  2. CPU per call: SIPp at --rate for --seconds through the front, then directly to node a;
     CPU seconds of the front's processes and of the node, per call;
  3. failover detection: SIPp load through the front, node a killed with SIGKILL; how long
     until the front shows a inactive in its home set (traffic) and in every set (probes),
     and how many calls SIPp counted failed.
Speed is measured here, never asserted: this is a benchmark, not a test.

  benches/load/site_load.py --rate 50 --seconds 10
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FRONT, NODE_A, NODE_B = "127.0.0.20", "127.0.0.11", "127.0.0.12"
SCENARIO = os.path.join(ROOT, "sip-tests", "scenarios", "trunk_call_via_proxy.xml")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def kamailio_pids(main_pid):
    """The front's main process and its children (kamailio forks its workers)."""
    pids = [main_pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == main_pid:
                        pids.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return pids


def node_config(work, name, host, sip_port, http_port, rtp_min):
    """Both nodes: DIDs 100 and 200 answer in an IVR; the front and this script may call."""
    return f"""
[sip]
listen_udp = ["{host}:{sip_port}"]
listen_tcp = []
max_calls = 100000
drain_timeout_s = 5
[http]
listen = "127.0.0.1:{http_port}"
[cdr]
dir = "{work}/cdr-{name}"
node = "{name}"
[media]
address = "127.0.0.1"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_min + 2047}
[[trunk]]
name = "front"
allow = ["{FRONT}/32", "127.0.0.1/32"]
[[number]]
did = "100"
ivr = "main"
[[number]]
did = "200"
ivr = "main"
[[ivr]]
name = "main"
[[ivr.menu]]
name = "top"
prompt = ["menu"]
digit_timeout_s = 60
retries = 0
keys = {{ "1" = "hangup" }}
"""


def options_ok(host, port, uri_user="ping"):
    user = f"{uri_user}@" if uri_user else ""
    msg = (f"OPTIONS sip:{user}{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKping{time.time_ns()};rport\r\n"
           f"From: <sip:ping@127.0.0.1>;tag=1\r\nTo: <sip:{user}{host}>\r\nCall-ID: ping{time.time_ns()}\r\nCSeq: 1 OPTIONS\r\n"
           "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        try:
            s.sendto(msg.encode(), (host, port))
            return s.recvfrom(4096)[0].startswith(b"SIP/2.0 200")
        except OSError:
            return False


def wait_for(what, condition, deadline=60):
    end = time.time() + deadline
    while time.time() < end:
        if condition():
            return
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def start_front(work, port, nodes):
    """The shipped kamailio.cfg with only its sockets changed, as sip-tests/src/kamailio.rs does."""
    os.makedirs(f"{work}/db", exist_ok=True)
    os.makedirs(f"{work}/run", exist_ok=True)
    cfg = open(os.path.join(ROOT, "deploy/kamailio/kamailio.cfg")).read()
    cfg = (cfg.replace("listen=udp:0.0.0.0:5060", f"listen=udp:{FRONT}:{port}")
              .replace("listen=tcp:0.0.0.0:5060", f"listen=tcp:{FRONT}:{port}")
              .replace("unix:/run/kamailio/kamailio_ctl", f"unix:{work}/run/kamailio_ctl"))
    open(f"{work}/kamailio.cfg", "w").write(cfg)
    (a, b) = nodes
    open(f"{work}/dispatcher.list", "w").write(
        f"1 sip:{a} 0 10 duid=a\n1 sip:{b} 0 5 duid=b\n2 sip:{b} 0 10 duid=b\n2 sip:{a} 0 5 duid=a\n")
    open(f"{work}/address.list", "w").write("1 127.0.0.1 32 0 trunk\n")
    header = "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n"
    open(f"{work}/db/did_routes", "w").write(header + "100:0:1:1:0\n200:0:1:2:0\n")
    open(f"{work}/db/agent_routes", "w").write(header)
    return subprocess.Popen(["kamailio", "-f", f"{work}/kamailio.cfg", "-DD", "-E",
                             "-A", f'CFGDIR="{work}"', "-A", f'DBURL="text://{work}/db"',
                             "-Y", f"{work}/run", "-P", f"{work}/run/kamailio.pid"],
                            stdout=open(f"{work}/kamailio.log", "w"), stderr=subprocess.STDOUT)


def dispatcher_flags(ctl, node):
    """{set: FLAGS} of `node` (host:port) at the front."""
    out = subprocess.run(["kamcmd", "-s", f"unix:{ctl}", "dispatcher.list"], capture_output=True, text=True).stdout
    flags, current, here = {}, None, False
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("ID:"):
            current = int(line.split()[1])
        elif line.startswith("URI:"):
            here = line == f"URI: sip:{node}"
        elif line.startswith("FLAGS:") and here:
            flags[current] = line.split()[1]
            here = False
    return flags


def timed_calls(host, port, count):
    """Sequential IVR calls to DID 100 at host:port from one socket: INVITE -> 200 in
    microseconds; each call is ACKed and hung up (with the Record-Route as Route when there is
    one, as a proxied trunk must)."""
    samples = []
    sdp = "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=p\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        me = s.getsockname()[1]
        for n in range(count):
            cid = f"lat-{port}-{n}-{time.time_ns()}"
            head = (f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{cid}{{b}};rport\r\n"
                    f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\n{{to}}\r\nCall-ID: {cid}\r\nMax-Forwards: 70\r\n")
            invite = (f"INVITE sip:100@{host}:{port} SIP/2.0\r\n" + head.format(b="i", to=f"To: <sip:100@{host}>") +
                      f"CSeq: 1 INVITE\r\nContact: <sip:probe@127.0.0.1:{me}>\r\nContent-Type: application/sdp\r\n"
                      f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
            t0 = time.perf_counter()
            s.sendto(invite.encode(), (host, port))
            ok = None
            while ok is None:
                data = s.recvfrom(8192)[0].decode(errors="replace")
                if data.startswith("SIP/2.0 200") and "INVITE" in data.split("CSeq:", 1)[1].split("\r\n", 1)[0]:
                    samples.append((time.perf_counter() - t0) * 1e6)
                    ok = data
                elif re.match(r"SIP/2.0 [3-6]", data):
                    sys.exit(f"call refused: {data.splitlines()[0]}")
            lines = ok.split("\r\n")
            to_line = next(l for l in lines if l.startswith("To:"))
            contact = re.search(r"<([^>]+)>", next(l for l in lines if l.lower().startswith("contact:"))).group(1)
            rr = [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("record-route:")]
            route = f"Route: {', '.join(rr)}\r\n" if rr else ""
            for method, cseq in (("ACK", 1), ("BYE", 2)):
                s.sendto((f"{method} {contact} SIP/2.0\r\n" + head.format(b=method, to=to_line) + route +
                          f"CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode(), (host, port))
            while True:
                data = s.recvfrom(8192)[0].decode(errors="replace")
                if data.startswith("SIP/2.0") and "BYE" in data.split("CSeq:", 1)[1].split("\r\n", 1)[0]:
                    break
    return sorted(samples)


def pct(values, p):
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def sipp(work, host, port, rate, calls, hold_ms, did="100"):
    return subprocess.Popen(["sipp", f"{host}:{port}", "-sf", SCENARIO, "-s", did, "-r", str(rate), "-m", str(calls),
                             "-d", str(hold_ms), "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()),
                             "-cp", str(free_port()), "-nostdin", "-timeout", "120s", "-trace_screen",
                             "-screen_file", f"{work}/sipp-{time.time_ns()}.screen"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)


def sipp_counts(work):
    """(successful, failed) of the newest SIPp screen file."""
    newest = max((os.path.join(work, f) for f in os.listdir(work) if f.endswith(".screen")), key=os.path.getmtime)
    text = open(newest).read()
    grab = lambda label: int(re.findall(rf"{label}\s*\|\s*\d+\s*\|\s*(\d+)", text)[-1])
    return grab("Successful call"), grab("Failed call")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=50, help="calls per second offered")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--hold-ms", type=int, default=300)
    ap.add_argument("--latency-calls", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs, CDRs)")
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "switchboard"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sb-site-")
    ports = {n: (free_port(), free_port()) for n in ("a", "b")}
    hosts = {"a": NODE_A, "b": NODE_B}
    nodes, procs = {}, []
    try:
        for i, name in enumerate(("a", "b")):
            sip_port, http_port = ports[name]
            open(f"{work}/{name}.toml", "w").write(node_config(work, name, hosts[name], sip_port, http_port, 20000 + 4096 * i))
            nodes[name] = subprocess.Popen([args.binary, "--log-level", "warn", "run", "--config", f"{work}/{name}.toml"],
                                           stdout=open(f"{work}/{name}.log", "w"), stderr=subprocess.STDOUT)
            procs.append(nodes[name])
            wait_for(f"node {name}", lambda: options_ok(hosts[name], sip_port))
        front_port = free_port()
        a_addr, b_addr = f"{NODE_A}:{ports['a'][0]}", f"{NODE_B}:{ports['b'][0]}"
        front = start_front(work, front_port, (a_addr, b_addr))
        procs.append(front)
        ctl = f"{work}/run/kamailio_ctl"
        wait_for("the front", lambda: options_ok(FRONT, front_port, uri_user=None))
        wait_for("both nodes active at the front",
                 lambda: all(f.startswith("A") for n in (a_addr, b_addr) for f in dispatcher_flags(ctl, n).values())
                 and len(dispatcher_flags(ctl, a_addr)) == 2)
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        # 1. Latency, alternating so both see the same machine load.
        timed_calls(FRONT, front_port, 20)  # warm-up: the front's first transactions
        timed_calls(NODE_A, ports["a"][0], 20)
        via_front, direct = [], []
        for _ in range(4):
            via_front += timed_calls(FRONT, front_port, args.latency_calls // 4)
            direct += timed_calls(NODE_A, ports["a"][0], args.latency_calls // 4)
        via_front.sort(); direct.sort()
        print(f"INVITE->200 via front: p50 {pct(via_front, 50):.0f} us  p90 {pct(via_front, 90):.0f} us  p99 {pct(via_front, 99):.0f} us")
        print(f"INVITE->200 direct:    p50 {pct(direct, 50):.0f} us  p90 {pct(direct, 90):.0f} us  p99 {pct(direct, 99):.0f} us")
        print(f"front added (p50): {pct(via_front, 50) - pct(direct, 50):.0f} us")

        # 2. CPU per call.
        calls = args.rate * args.seconds
        for label, host, port in (("via front", FRONT, front_port), ("direct", NODE_A, ports["a"][0])):
            k0, n0 = cpu_seconds(kamailio_pids(front.pid)), cpu_seconds([nodes["a"].pid])
            run = sipp(work, host, port, args.rate, calls, args.hold_ms)
            run.wait(timeout=args.seconds + 120)
            ok, failed = sipp_counts(work)
            k1, n1 = cpu_seconds(kamailio_pids(front.pid)), cpu_seconds([nodes["a"].pid])
            print(f"{label}: {ok} ok / {failed} failed at {args.rate}/s; CPU per call: front {1e6 * (k1 - k0) / calls:.0f} us, "
                  f"node {1e6 * (n1 - n0) / calls:.0f} us; load average {os.getloadavg()[0]:.2f}")

        # 3. Failover detection.
        run = sipp(work, FRONT, front_port, args.rate, calls, args.hold_ms)
        time.sleep(args.seconds / 3)  # the kill lands mid-run, by design
        nodes["a"].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        home = every = None
        while every is None and time.monotonic() - killed < 60:
            flags = dispatcher_flags(ctl, a_addr)
            if home is None and flags.get(1, "A").startswith("I"):
                home = time.monotonic() - killed
            if all(f.startswith("I") for f in flags.values()):
                every = time.monotonic() - killed
            time.sleep(0.05)
        run.wait(timeout=args.seconds + 120)
        ok, failed = sipp_counts(work)
        print(f"failover: node a killed under {args.rate}/s; down in its home set after {home or float('nan'):.2f} s, "
              f"in every set after {every or float('nan'):.2f} s; SIPp {ok} ok, {failed} failed (calls on a when it died)")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        if args.keep:
            print(f"work dir: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
