#!/usr/bin/env python3
"""Flood benchmark: an unauthenticated INVITE flood from 127.0.0.2 while a SIPp trunk on
127.0.0.1 places legitimate calls to agents. For each flood rate it prints the legitimate
calls' goodput, Switchboard's CPU and RSS (before, peak, after), the bytes Switchboard sent
to the attacker per byte the attacker sent, and whether any response reached the attacker
twice (a retransmission, i.e. transaction state). Measured here, never asserted.

  benches/load/flood.py --rates 0,5000,20000,40000 --seconds 15 --cps 100

Only 127.0.0.1 is a trunk, so the flood is "outside every trunk ACL and without
credentials": it meets the per-source token bucket and the stateless answers.
"""
import argparse, csv, multiprocessing, os, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sip_load import ROOT, free_port, node_config, proc_stat, register_agents, wait_options  # noqa: E402


def flood(sip_port, rate, seconds, result):
    """Sends `rate` INVITEs a second (each a new Call-ID) from 127.0.0.2 for `seconds`, and
    counts what comes back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.2", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    port = sock.getsockname()[1]
    sock.setblocking(False)
    template = ("INVITE sip:100@127.0.0.1:{sip} SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.2:{port};branch=z9hG4bKflood{n};rport\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.2>;tag=f{n}\r\n"
                "To: <sip:100@127.0.0.1>\r\nCall-ID: flood-{n}\r\nCSeq: 1 INVITE\r\n"
                "Contact: <sip:flood@127.0.0.2:{port}>\r\nContent-Length: 0\r\n\r\n")
    sent = sent_bytes = received = received_bytes = 0
    seen = {}
    t0 = time.time()
    end = t0 + seconds
    n = 0
    while True:
        now = time.time()
        if now >= end:
            break
        due = int((now - t0) * rate)
        while n < due:
            data = template.format(sip=sip_port, port=port, n=n).encode()
            try:
                sock.sendto(data, ("127.0.0.1", sip_port))
                sent += 1
                sent_bytes += len(data)
            except BlockingIOError:
                pass
            n += 1
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                break
            received += 1
            received_bytes += len(data)
            call_id = next((l for l in data.split(b"\r\n") if l.startswith(b"Call-ID:")), b"")
            seen[call_id] = seen.get(call_id, 0) + 1
        time.sleep(0.001)
    # Late answers and retransmissions (a 403 would be retransmitted for 32 s).
    sock.setblocking(True)
    sock.settimeout(5)
    try:
        while True:
            data = sock.recv(65535)
            received += 1
            received_bytes += len(data)
            call_id = next((l for l in data.split(b"\r\n") if l.startswith(b"Call-ID:")), b"")
            seen[call_id] = seen.get(call_id, 0) + 1
    except socket.timeout:
        pass
    result.put({
        "sent": sent, "sent_bytes": sent_bytes, "received": received,
        "received_bytes": received_bytes, "wall": time.time() - t0 - 5,
        "repeated": sum(1 for c in seen.values() if c > 1),
    })


def run(args, rate):
    work = tempfile.mkdtemp(prefix="sb-flood-")
    sip_port, http_port, agent_port, trunk_port = free_port(), free_port(), free_port(), free_port()
    with open(f"{work}/flood.toml", "w") as f:
        # Only 127.0.0.1 is the trunk: the flood from 127.0.0.2 is an untrusted source.
        f.write(node_config(work, sip_port, http_port, args.agents, "carrier", "127.0.0.1/32"))
    sb = subprocess.Popen([args.binary, "--log-level", "warn", "run", "--config", f"{work}/flood.toml"],
                          stdout=open(f"{work}/switchboard.log", "w"), stderr=subprocess.STDOUT)
    procs = []
    try:
        wait_options(sip_port)
        common = ["-nostdin", "-i", "127.0.0.1", "-buff_size", "4194304"]
        register_agents(agent_port, sip_port, [(str(8000 + i), f"pw{8000 + i}") for i in range(args.agents)])
        uas = subprocess.Popen(["sipp", "-sf", f"{HERE}/agent_uas.xml", "-p", str(agent_port), "-mp", str(free_port()),
                                "-cp", str(free_port()), "-timeout", str(args.seconds + 90)] + common,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        procs.append(uas)
        cpu0, rss0 = proc_stat(sb.pid)
        calls = args.cps * args.seconds
        t0 = time.time()
        uac = subprocess.Popen(["sipp", f"127.0.0.1:{sip_port}", "-sf", f"{HERE}/trunk_uac.xml", "-s", "100",
                                "-r", str(args.cps), "-m", str(calls), "-d", "0", "-l", "2000",
                                "-p", str(trunk_port), "-mp", str(free_port()), "-cp", str(free_port()),
                                "-trace_stat", "-fd", "1", "-timeout", str(args.seconds * 3 + 60)] + common,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
        procs.append(uac)
        result = multiprocessing.Queue()
        flooder = None
        if rate:
            flooder = multiprocessing.Process(target=flood, args=(sip_port, rate, args.seconds, result))
            flooder.start()
        peak = rss0
        while uac.poll() is None and time.time() < t0 + args.seconds * 3 + 60:
            time.sleep(0.5)
            peak = max(peak, proc_stat(sb.pid)[1])
        if uac.poll() is None:
            uac.kill()
        cpu1, rss1 = proc_stat(sb.pid)
        elapsed = time.time() - t0
        stats = result.get(timeout=60) if flooder else None
        if flooder:
            flooder.join()
        time.sleep(10)  # what the process keeps once the flood and the calls are over
        _, rss_settled = proc_stat(sb.pid)
        rows = []
        for name in os.listdir(work):
            if name.endswith(".csv") and "trunk_uac" in name and "rtt" not in name:
                with open(os.path.join(work, name)) as f:
                    rows = list(csv.reader(f, delimiter=";"))
        success = failed = 0
        if rows:
            header, last = rows[0], rows[-1]
            success = int(last[header.index("SuccessfulCall(C)")])
            failed = int(last[header.index("FailedCall(C)")])
        print(f"flood {rate}/s for {args.seconds} s, legitimate {args.cps} calls/s ({calls} calls)")
        print(f"  legitimate calls    {success} ok, {failed} failed: {100 * success / max(calls, 1):.2f} % complete")
        if stats:
            print(f"  flood sent          {stats['sent']} msgs ({stats['sent'] / args.seconds:.0f}/s achieved), "
                  f"{stats['sent_bytes']} bytes")
            print(f"  to the attacker     {stats['received']} msgs, {stats['received_bytes']} bytes = "
                  f"{stats['received_bytes'] / max(stats['sent_bytes'], 1):.4f} bytes per byte received; "
                  f"{stats['repeated']} Call-IDs answered more than once")
        print(f"  switchboard CPU     {100 * (cpu1 - cpu0) / elapsed:.0f} % of one core")
        print(f"  switchboard RSS     before {rss0 / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
              f"at the end {rss1 / 1024:.1f} MiB, 10 s later {rss_settled / 1024:.1f} MiB")
        sys.stdout.flush()
        return success / max(calls, 1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        sb.send_signal(signal.SIGTERM)
        try:
            sb.wait(timeout=40)
        except subprocess.TimeoutExpired:
            sb.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="0,5000,20000,40000", help="flood rates (messages/s), comma-separated")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--cps", type=int, default=100, help="legitimate calls per second")
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchboard"))
    args = ap.parse_args()
    best = None
    for rate in [int(r) for r in args.rates.split(",")]:
        if run(args, rate) >= 0.99:
            best = rate
    print(f"highest flood rate with >= 99 % of legitimate calls completing: {best}/s")


if __name__ == "__main__":
    main()
