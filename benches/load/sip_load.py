#!/usr/bin/env python3
"""SIP load benchmark: SIPp trunk UAC -> Switchboard (release) -> SIPp agent UAS (and, with
--peer kamailio, the same load through a transaction-stateful Kamailio relay in the same run).

Registers N agents (all from one SIPp port), then drives calls at a fixed rate and prints
achieved CPS, failed calls, INVITE->180 and INVITE->200 percentiles (180 needs the agent leg's
INVITE to go out and its 180 to come back), and the switchboard process's CPU and RSS.
Speed is measured here, never asserted: this is a benchmark, not a test.

  benches/load/sip_load.py --rate 2000 --seconds 20            # CPS run
  benches/load/sip_load.py --rate 100 --seconds 30 --hold-ms 10000   # ~1000 concurrent calls: RSS
  benches/load/sip_load.py --rate 3000 --seconds 10 --peer kamailio  # Kamailio relay, then Switchboard
  benches/load/sip_load.py --rate 2000 --agents 10000 --queues 200   # cost with many agents and queues
  benches/load/sip_load.py --rate 1000,2000,4000,8000 --seconds 10   # offered vs goodput
  benches/load/sip_load.py --rate 2000 --baseline-binary /tmp/old/switchboard  # old build, then this one
  benches/load/sip_load.py --rate 2000 --seconds 500 --rss-every 10  # soak: 1,000,000 calls, RSS table
  benches/load/sip_load.py --rate 50 --seconds 50 --hold-ms 100000 --agents 2700 --rtp-ports 20000-31999 --live-rss
                                                        # 2500 calls held up: KiB per live anchored call
"""
import argparse, csv, threading, hashlib, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rss_kib = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    return ticks / os.sysconf("SC_CLK_TCK"), rss_kib


def wait_options(port, deadline=30):
    end = time.time() + deadline
    msg = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKping;rport\r\n"
           "From: <sip:ping@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: ping\r\nCSeq: 1 OPTIONS\r\n"
           "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.time() < end:
            s.sendto(msg.encode(), ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(4096)
                if data.startswith(b"SIP/2.0 200"):
                    return
            except socket.timeout:
                pass
    sys.exit("switchboard did not answer OPTIONS")


def register_agents(local_port, sip_port, users):
    """REGISTERs every (user, password) from local_port with MD5 digest, the way a phone does.
    SIPp 3.6 cannot take per-call credentials from an injection file, so this small client does it;
    the load UAS then binds the same port and answers for all of them."""
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", local_port))
        s.settimeout(5)
        for n, (user, password) in enumerate(users):
            def register(cseq, auth=""):
                msg = (f"REGISTER sip:127.0.0.1:{sip_port} SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bKreg{n}x{cseq};rport\r\n"
                       f"From: <sip:{user}@127.0.0.1>;tag=r{n}\r\nTo: <sip:{user}@127.0.0.1>\r\n"
                       f"Call-ID: reg-{n}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n"
                       f"Contact: <sip:{user}@127.0.0.1:{local_port}>\r\nExpires: 3600\r\n{auth}Content-Length: 0\r\n\r\n")
                s.sendto(msg.encode(), ("127.0.0.1", sip_port))
                return s.recvfrom(8192)[0].decode()
            reply = register(1)
            challenge = next(l for l in reply.split("\r\n") if l.startswith("WWW-Authenticate") and "MD5" in l)
            realm = re.search(r'realm="([^"]*)"', challenge).group(1)
            nonce = re.search(r'nonce="([^"]*)"', challenge).group(1)
            uri = f"sip:127.0.0.1:{sip_port}"
            ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"REGISTER:{uri}")
            response = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
            auth = (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                    f'response="{response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\r\n')
            reply = register(2, auth)
            if not reply.startswith("SIP/2.0 200"):
                sys.exit(f"registration of {user} failed: {reply.splitlines()[0]}")


def probe_calls(sip_port, stop, samples):
    """While the load runs, places one call at a time from its own socket and records the time
    from sending INVITE to receiving 180 in microseconds (SIPp's own response times have only
    millisecond resolution)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        port = s.getsockname()[1]
        n = 0
        while not stop.is_set():
            n += 1
            cid = f"probe-{n}"
            head = (f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKprobe{n}{{b}};rport\r\n"
                    f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\n{{to}}\r\nCall-ID: {cid}\r\nMax-Forwards: 70\r\n")
            sdp = "v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=p\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
            invite = (f"INVITE sip:100@127.0.0.1:{sip_port} SIP/2.0\r\n" + head.format(b="i", to="To: <sip:100@127.0.0.1>") +
                      f"CSeq: 1 INVITE\r\nContact: <sip:probe@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n"
                      f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
            t0 = time.perf_counter()
            s.sendto(invite.encode(), ("127.0.0.1", sip_port))
            to_line = None
            try:
                while True:
                    data = s.recvfrom(8192)[0].decode(errors="replace")
                    if data.startswith("SIP/2.0 180") and len(samples) < 100000 and to_line is None:
                        samples.append((time.perf_counter() - t0) * 1e6)
                    if data.startswith("SIP/2.0 200"):
                        to_line = next(l for l in data.split("\r\n") if l.startswith("To:"))
                        break
                    if data[8:9] in "3456":
                        break
            except socket.timeout:
                continue
            if to_line:
                s.sendto((f"ACK sip:switchboard@127.0.0.1:{sip_port} SIP/2.0\r\n" + head.format(b="a", to=to_line) +
                          "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", sip_port))
                s.sendto((f"BYE sip:switchboard@127.0.0.1:{sip_port} SIP/2.0\r\n" + head.format(b="b", to=to_line) +
                          "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", sip_port))
                try:
                    s.recvfrom(8192)
                except socket.timeout:
                    pass
            stop.wait(0.02)


def node_config(work, sip_port, http_port, agents, trunk, trunk_allow, queues=1, rtp_ports=None, media_timeout_s=None):
    """The node's configuration: UDP SIP on sip_port, one trunk admitting trunk_allow, agents
    8000.. with passwords pw8000.. (see register_agents). With one queue: DID 100 to queue
    support, every agent in it. With N queues: DID 100+k to queue q{k}, and agent i has only
    skill q{i mod N}, so each queue has agents/N agents of its own."""
    if queues <= 1:
        skill_of = lambda i: "support"
        queue_tables = '[[number]]\ndid = "100"\nqueue = "support"\n[[queue]]\nname = "support"\nskills = { support = 1 }\nwrap_up_s = 0\n'
    else:
        skill_of = lambda i: f"q{i % queues}"
        queue_tables = "".join(
            f'[[number]]\ndid = "{100 + k}"\nqueue = "q{k}"\n[[queue]]\nname = "q{k}"\nskills = {{ q{k} = 1 }}\nwrap_up_s = 0\n'
            for k in range(queues))
    agent_tables = "\n".join(
        f'[[agent]]\nid = "{8000 + i}"\nname = "Load {i}"\npassword = "pw{8000 + i}"\nskills = {{ {skill_of(i)} = 5 }}\n'
        for i in range(agents))
    media = ""
    if rtp_ports:
        low, high = rtp_ports.split("-")
        media = f"rtp_port_min = {int(low)}\nrtp_port_max = {int(high)}\n"
    if media_timeout_s is not None:
        media += f"timeout_s = {media_timeout_s}\n"
    if media:
        media = "[media]\n" + media
    return f"""{media}
[sip]
listen_udp = ["127.0.0.1:{sip_port}"]
listen_tcp = []
max_calls = 1000000
[http]
listen = "127.0.0.1:{http_port}"
[cdr]
dir = "{work}/cdr"
[[trunk]]
name = "{trunk}"
allow = ["{trunk_allow}"]
{queue_tables}
[acd]
not_ready_reasons = ["missed"]
{agent_tables}
"""


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


KAMAILIO_CFG = """#!KAMAILIO
# Transaction-stateful relay for the peer row of sip_load.py: every request goes to the SIPp
# agent port through tm (t_relay), INVITEs are record-routed so ACK and BYE come back through
# it, as they do through Switchboard. No registrar: the destination is fixed.
debug=0
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("tm", "fr_timer", 5000)

request_route {{
    if (is_method("OPTIONS") && $ci == "ping") {{
        sl_send_reply("200", "OK");  # the script's readiness probe (wait_options)
        exit;
    }}
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (has_totag()) {{
        if (!loose_route()) {{
            $du = "sip:127.0.0.1:{agent_port}";
        }}
        t_relay();
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    $du = "sip:127.0.0.1:{agent_port}";
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""


def process_tree_cpu(pid):
    """CPU seconds of pid and its children (Kamailio's workers are child processes)."""
    total, _ = proc_stat(pid)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                total += proc_stat(int(entry))[0]
        except (OSError, ValueError, IndexError):
            pass
    return total


def start_switchboard(args, work, agent_port, binary):
    sip_port, http_port = free_port(), free_port()
    with open(f"{work}/load.toml", "w") as f:
        # SIPp sends no RTP: held calls would end at the media timeout (30 s) unless it is off.
        media_timeout_s = 0 if args.live_rss else None
        f.write(node_config(work, sip_port, http_port, args.agents, "load", "127.0.0.0/8", args.queues, args.rtp_ports,
                            media_timeout_s))
    proc = subprocess.Popen([binary, "--log-level", "warn", "run", "--config", f"{work}/load.toml"],
                            stdout=open(f"{work}/switchboard.log", "w"), stderr=subprocess.STDOUT)
    wait_options(sip_port)
    register_agents(agent_port, sip_port, [(str(8000 + i), f"pw{8000 + i}") for i in range(args.agents)])
    return proc, sip_port, http_port


def rejected_by_reason(http_port):
    """switchboard_calls_rejected_total by reason, from /metrics ({} if unreachable)."""
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        m = re.match(r'switchboard_calls_rejected_total\{reason="([^"]+)"\} (\S+)', line)
        if m:
            found[m.group(1)] = int(float(m.group(2)))
    return found


def start_kamailio(work, agent_port):
    sip_port = free_port()
    with open(f"{work}/kamailio.cfg", "w") as f:
        f.write(KAMAILIO_CFG.format(port=sip_port, agent_port=agent_port))
    # Tuned as operators tune it for load: 2 GiB shared memory, the tlsf allocator.
    proc = subprocess.Popen(["kamailio", "-DD", "-E", "-f", f"{work}/kamailio.cfg", "-m", "2048", "-M", "32",
                             "-x", "tlsf", "-Y", work, "-P", f"{work}/kamailio.pid", "-w", work],
                            stdout=open(f"{work}/kamailio.log", "w"), stderr=subprocess.STDOUT)
    return proc, sip_port


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_load(args, rate, target, work):
    """One measured run of `rate` calls/s through `target` ("switchboard", "baseline": the
    --baseline-binary, or "kamailio")."""
    os.makedirs(work)
    agent_port, trunk_port = free_port(), free_port()
    load_at_start = os.getloadavg()[0]
    http_port = None
    if target == "kamailio":
        server, sip_port = start_kamailio(work, agent_port)
        wait_options(sip_port)
    else:
        binary = args.baseline_binary if target == "baseline" else args.binary
        server, sip_port, http_port = start_switchboard(args, work, agent_port, binary)
    procs = []
    try:
        common = ["-nostdin", "-i", "127.0.0.1", "-buff_size", "4194304"]
        uas = subprocess.Popen(["sipp", "-sf", f"{HERE}/agent_uas.xml", "-p", str(agent_port), "-mp", str(free_port()),
                                "-cp", str(free_port()), "-timeout", str(args.seconds * 3 + 60)] + common,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        procs.append(uas)
        time.sleep(1)  # the UAS binds at once; this only lets it settle before the clock starts
        # The trunk dials DID 100 (one queue) or 100..100+N-1 in turn (N queues).
        with open(f"{work}/dids.csv", "w") as f:
            f.write("SEQUENTIAL\n" + "".join(f"{100 + k}\n" for k in range(max(1, args.queues))))
        with open(f"{HERE}/trunk_uac.xml") as f:
            scenario = f.read().replace("[service]", "[field0]")
        with open(f"{work}/trunk_uac.xml", "w") as f:
            f.write(scenario)
        calls = rate * args.seconds
        cpu0 = process_tree_cpu(server.pid)
        _, rss0 = proc_stat(server.pid)
        t0 = time.time()
        uac = subprocess.Popen(["sipp", f"127.0.0.1:{sip_port}", "-sf", f"{work}/trunk_uac.xml",
                                "-inf", f"{work}/dids.csv",
                                "-r", str(rate), "-m", str(calls), "-d", str(args.hold_ms),
                                "-l", str(max(1000, rate * (args.hold_ms // 1000 + 5))),
                                "-p", str(trunk_port), "-mp", str(free_port()), "-cp", str(free_port()),
                                "-trace_stat", "-fd", "1",
                                "-timeout", str(args.seconds * 3 + args.hold_ms // 1000 + 60)] + common,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        procs.append(uac)
        stop_probe, ring = threading.Event(), []
        probe = threading.Thread(target=probe_calls, args=(sip_port, stop_probe, ring), daemon=True)
        # --live-rss: no probe calls, whose finished transactions (~50 calls/s, lingering
        # 32 s) would be counted as the live calls' memory.
        if not args.live_rss:
            probe.start()
        peak_rss, mid_rss = rss0, None
        deadline = t0 + args.seconds * 3 + args.hold_ms / 1000 + 60
        stopped = False
        # (seconds since start, RSS KiB, CPU seconds) every --rss-every seconds, for soak runs.
        samples, next_sample = [(0.0, rss0, 0.0)], t0 + (args.rss_every or 0)
        # --live-rss: every call is up and the INVITE transactions of the last one (answered
        # by ~seconds + 1) have stopped lingering (64·T1 = 32 s), while none has hung up yet.
        live_rss, live_at = None, t0 + args.seconds + 36
        while uac.poll() is None:
            if time.time() > deadline:
                # Past saturation SIPp may never finish; the bench must still end and report.
                stopped = True
                uac.kill()
                uac.wait()
                break
            time.sleep(0.5)
            _, rss = proc_stat(server.pid)
            peak_rss = max(peak_rss, rss)
            if mid_rss is None and time.time() - t0 > args.seconds * 0.9:
                mid_rss = rss
            if args.live_rss and live_rss is None and time.time() >= live_at:
                live_rss = rss
            if args.rss_every and time.time() >= next_sample:
                samples.append((time.time() - t0, rss, process_tree_cpu(server.pid) - cpu0))
                next_sample += args.rss_every
        elapsed = time.time() - t0
        cpu1 = process_tree_cpu(server.pid)
        _, rss1 = proc_stat(server.pid)
        if args.rss_every:
            # The calls' transactions linger 32 s (64·T1) after the load: sample until they
            # are gone, to see what the finished calls left behind.
            linger_end = time.time() + 40
            while time.time() < linger_end:
                time.sleep(min(args.rss_every, max(0.0, linger_end - time.time())))
                _, rss = proc_stat(server.pid)
                samples.append((time.time() - t0, rss, process_tree_cpu(server.pid) - cpu0))
        stop_probe.set()
        if probe.is_alive():
            probe.join(timeout=10)
        stat_files = [f for f in os.listdir(work) if f.endswith(".csv") and "trunk_uac" in f and "rtt" not in f]
        success = failed = answered_otherwise = retrans_exhausted = 0
        if stat_files:
            with open(os.path.join(work, stat_files[0])) as f:
                rows = list(csv.reader(f, delimiter=";"))
            header, last = rows[0], rows[-1]
            success = int(last[header.index("SuccessfulCall(C)")])
            failed = int(last[header.index("FailedCall(C)")])
            # An unexpected message is a final response other than the 180/200 the scenario
            # waits for (a 503 refusal, for instance); exhausted retransmissions are timeouts.
            answered_otherwise = int(last[header.index("FailedUnexpectedMessage(C)")])
            retrans_exhausted = int(last[header.index("FailedMaxUDPRetrans(C)")])
        rejected = rejected_by_reason(http_port) if http_port else {}
        return dict(target=target, rate=rate, calls=calls, success=success, failed=failed, exit=uac.returncode,
                    stopped=stopped, elapsed=elapsed, cps=success / max(0.001, elapsed - args.hold_ms / 1000),
                    cpu=cpu1 - cpu0, ring=ring, rss0=rss0, peak_rss=peak_rss, rss1=rss1, mid_rss=mid_rss,
                    live_rss=live_rss,
                    samples=samples,
                    load=load_at_start, work=work, answered_otherwise=answered_otherwise,
                    retrans_exhausted=retrans_exhausted, rejected=rejected)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        stop(server)


def print_run(args, r):
    print(f"--- {r['target']}: offered {r['rate']} calls/s for {args.seconds} s ({r['calls']} calls), "
          f"hold {args.hold_ms} ms, {args.agents} agents in {args.queues} queue(s), load average {r['load']:.2f} at start")
    if r["stopped"]:
        print("trunk UAC did not finish in time: stopped (overload)")
    print(f"calls               {r['success']} successful, {r['failed']} failed, exit {r['exit']}")
    print(f"failures            {r['answered_otherwise']} answered with another final response (e.g. 503), "
          f"{r['retrans_exhausted']} timed out (retransmissions exhausted), rest unfinished")
    if r["rejected"]:
        print(f"refused by reason   {r['rejected']} (switchboard_calls_rejected_total)")
    print(f"achieved CPS        {r['cps']:.0f} (wall {r['elapsed']:.1f} s)")
    ring = r["ring"]
    print(f"INVITE->180 us      p50 {percentile(ring, 50):.0f}  p99 {percentile(ring, 99):.0f}  "
          f"({len(ring)} probe calls during the load; covers the agent leg's INVITE and 180)")
    per_call = 1000 * r["cpu"] / r["success"] if r["success"] else float("nan")
    print(f"{r['target']:<10} CPU     {100 * r['cpu'] / r['elapsed']:.0f} % of one core (avg over the run), "
          f"{per_call:.3f} ms per successful call")
    print(f"{r['target']:<10} RSS     start {r['rss0'] / 1024:.1f} MiB, peak {r['peak_rss'] / 1024:.1f} MiB, "
          f"end {r['rss1'] / 1024:.1f} MiB")
    # (With --live-rss the line below is the right figure: this one assumes every call lasts
    # its hold time, which calls longer than the media timeout do not, SIPp sending no RTP.)
    if args.hold_ms and r["mid_rss"] and not args.live_rss:
        concurrent = r["rate"] * args.hold_ms / 1000
        print(f"RSS per 1000 calls  {(r['mid_rss'] - r['rss0']) / 1024 / concurrent * 1000:.1f} MiB "
              f"(at ~{concurrent:.0f} concurrent calls)")
    if r.get("live_rss") is not None:
        print(f"RSS per live call   {(r['live_rss'] - r['rss0']) / r['calls']:.1f} KiB: {r['calls']} calls up (media anchored), "
              f"{(r['live_rss'] - r['rss0']) / 1024:.1f} MiB above start, sampled {args.seconds + 36} s in, "
              f"after their INVITE transactions' linger and before any hangs up")
    if len(r.get("samples", [])) > 1:
        print("| s since start | RSS MiB | calls offered so far | CPU s |")
        print("|---:|---:|---:|---:|")
        for at, rss, cpu in r["samples"]:
            offered = min(r["calls"], int(at * r["rate"]))
            print(f"| {at:.0f} | {rss / 1024:.1f} | {offered} | {cpu:.1f} |")
        # While calls run at a steady rate, the finished calls whose transactions still linger
        # (64·T1 = 32 s of them) are what RSS holds above the idle process.
        lingering = min(r["calls"], 32 * r["rate"])
        plateau = max(rss for at, rss, _ in r["samples"] if at <= r["elapsed"])
        print(f"RSS above start at the plateau: {(plateau - r['rss0']) / 1024:.1f} MiB for ~{lingering} calls "
              f"lingering = {(plateau - r['rss0']) / max(1, lingering):.2f} KiB per finished call; "
              f"after the linger: {(r['samples'][-1][1] - r['rss0']) / 1024:.1f} MiB above start")
    if args.keep:
        print(f"work dir            {r['work']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", default="1000",
                    help="calls per second offered; a comma-separated list runs each rate in turn (an offered-vs-goodput curve)")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--hold-ms", type=int, default=0, help="talk time before the trunk hangs up")
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--queues", type=int, default=1,
                    help="spread the agents over this many queues (one skill each), the trunk dialling each queue's DID in turn")
    ap.add_argument("--rtp-ports", metavar="MIN-MAX",
                    help="Switchboard's [media] RTP port range (default: the product's 20000-29999, four ports a call); "
                         "keep it below the kernel's ephemeral range, where SIPp's and this script's sockets are")
    ap.add_argument("--peer", choices=["kamailio"],
                    help="before each Switchboard run, run the same load through this peer (Kamailio: transaction-stateful relay to the agents)")
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchboard"))
    ap.add_argument("--rss-every", type=float, metavar="SECONDS",
                    help="soak runs: sample Switchboard's RSS (and CPU) this often during the load and for 40 s after "
                         "it (the transactions' linger), and print the samples as a table")
    ap.add_argument("--baseline-binary", metavar="PATH",
                    help="another switchboard binary (e.g. the build before a change), run on the same load right before "
                         "--binary at each rate and shown as target \"baseline\", so old and new are measured in one invocation")
    ap.add_argument("--live-rss", action="store_true",
                    help="sample RSS once every call is up and its INVITE transactions have stopped lingering "
                         "(--seconds + 36 s), and print KiB per live anchored call; needs --hold-ms above "
                         "(--seconds + 40) * 1000 and at least as many --agents as calls; turns the media "
                         "timeout off, since SIPp sends no RTP")
    ap.add_argument("--keep", action="store_true",
                    help="keep each run's work directory (configuration, Switchboard's log, CDRs, SIPp's "
                         "statistics) under /tmp; without it they are removed at the end, since a step of "
                         "100,000 calls leaves about 1 GB")
    args = ap.parse_args()
    if args.live_rss and args.hold_ms < (args.seconds + 40) * 1000:
        ap.error(f"--live-rss needs --hold-ms of at least {(args.seconds + 40) * 1000} for --seconds {args.seconds}")
    if args.live_rss:
        most_calls = max(int(r) for r in args.rate.split(",")) * args.seconds
        if args.agents < most_calls:
            ap.error(f"--live-rss holds every call up: --agents must be at least {most_calls} (rate x seconds)")

    root = tempfile.mkdtemp(prefix="sb-load-")
    try:
        results = []
        for rate in [int(r) for r in args.rate.split(",")]:
            baseline = ["baseline"] if args.baseline_binary else []
            for target in ([args.peer] if args.peer else []) + baseline + ["switchboard"]:
                r = run_load(args, rate, target, f"{root}/{target}-{rate}")
                print_run(args, r)
                results.append(r)
                sys.stdout.flush()
        if len(results) > 1:
            print()
            # RFC 6357's offered-vs-goodput curve: past capacity, goodput is read against the best
            # step of the same target's curve (the issue asks for >= 95 % of that peak at 2x).
            peak = {}
            for r in results:
                peak[r["target"]] = max(peak.get(r["target"], 0), r["cps"])
            print("| target | load at start | offered/s | ok | failed | achieved/s | goodput % of offered | goodput % of the curve's peak | CPU % of one core | CPU ms/call | INVITE->180 p50/p99 us | refused (other final) | timed out |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
            for r in results:
                per_call = 1000 * r["cpu"] / r["success"] if r["success"] else float("nan")
                of_peak = 100 * r["cps"] / peak[r["target"]] if peak[r["target"]] else float("nan")
                print(f"| {r['target']} | {r['load']:.2f} | {r['rate']} | {r['success']} | {r['failed']} | {r['cps']:.0f} | "
                      f"{100 * r['success'] / r['calls']:.1f} | {of_peak:.1f} | {100 * r['cpu'] / r['elapsed']:.0f} | {per_call:.3f} | "
                      f"{percentile(r['ring'], 50):.0f}/{percentile(r['ring'], 99):.0f} | "
                      f"{r['answered_otherwise']} | {r['retrans_exhausted']} |")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
