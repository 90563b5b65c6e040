#!/usr/bin/env python3
"""Server-side REGISTER latency from a loopback capture (tcpdump -w, UDP to and from the server).

Pairs every request with its response by Call-ID and CSeq and prints, for the transactions
whose final response has the given status, the time from the request's first copy on the wire
to the response: the server's own latency, with the kernel's microsecond timestamps, which
sipp's rtd (its clock is CLOCK_MONOTONIC_COARSE, the kernel tick) cannot resolve.

    wire_latency.py CAPTURE SERVER_PORT [STATUS]
prints: n=.. p50_us=.. p99_us=.. p999_us=.. max_us=.. unanswered=..
"""
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        if magic == 0xA1B2C3D4:
            endian, scale = "<", 1000
        elif magic == 0xA1B23C4D:
            endian, scale = "<", 1
        elif magic == 0xD4C3B2A1:
            endian, scale = ">", 1000
        elif magic == 0x4D3CB2A1:
            endian, scale = ">", 1
        else:
            raise SystemExit(f"{path}: not a pcap file")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack(endian + "IIII", rec)
            data = f.read(incl)
            yield (sec * 1_000_000_000 + frac * scale), linktype, data


def udp_payload(linktype, data):
    if linktype == 1:  # Ethernet (Linux lo)
        if len(data) < 14 or data[12:14] != b"\x08\x00":
            return None
        ip = data[14:]
    elif linktype == 113:  # Linux cooked
        ip = data[16:]
    elif linktype in (0, 108):  # BSD loopback
        ip = data[4:]
    else:
        ip = data
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    ihl = (ip[0] & 0x0F) * 4
    sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
    return sport, dport, ip[ihl + 8:]


def header(msg, long, short):
    for line in msg.split(b"\r\n")[1:]:
        if not line:
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == long or name == short:
            return value.strip()
    return None


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    want = sys.argv[3].encode() if len(sys.argv) > 3 else b"200"
    sent = {}
    latencies = []
    answered = set()
    for ts, linktype, data in packets(path):
        p = udp_payload(linktype, data)
        if p is None:
            continue
        sport, dport, msg = p
        call_id = header(msg, b"call-id", b"i")
        cseq = header(msg, b"cseq", b"cseq")
        if call_id is None or cseq is None:
            continue
        key = (call_id, cseq.split()[0])
        if dport == port and not msg.startswith(b"SIP/2.0 "):
            sent.setdefault(key, ts)
        elif sport == port and msg.startswith(b"SIP/2.0 "):
            status = msg[8:11]
            if status.startswith(b"1") or key in answered or key not in sent:
                continue
            answered.add(key)
            if status == want:
                latencies.append((ts - sent[key]) / 1000)
    latencies.sort()
    n = len(latencies)

    def pct(q):
        return latencies[min(n - 1, int(q * (n - 1) + 0.5))] if n else 0

    print(f"n={n} p50_us={pct(0.5):.0f} p99_us={pct(0.99):.0f} p999_us={pct(0.999):.0f} "
          f"max_us={latencies[-1] if n else 0:.0f} unanswered={len(set(sent) - answered)}")


if __name__ == "__main__":
    main()
