#!/usr/bin/env python3
"""Hostile clients against a Redis-compatible server on HOST:PORT, beside one steady client
whose latency is measured: what the soak's hostile phase runs against the appliance.

  scripts/hostile-clients.py PORT [--seconds 60] [--host 127.0.0.1]

While the steady client does SET/GET round trips and records each one's latency, others:
  - send fuzzed RESP (random bytes, truncated frames, huge announced lengths, bad counts),
  - hold an idle flood of 200 connections that never send,
  - half-close (send commands, then a FIN, then read the replies: `nc -N`),
  - trickle a command one byte every 100 ms (slowloris).
Prints the steady client's p50/p99/max and how many of its requests failed, as JSON on the
last line. Exits 1 if the steady client saw a wrong reply or a failure. Loopback only.
"""
import argparse, json, random, socket, threading, time

def encode(*arguments):
    out = [b"*%d\r\n" % len(arguments)]
    for argument in arguments:
        data = argument if isinstance(argument, bytes) else str(argument).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)

def connect(host, port, timeout=5):
    connection = socket.create_connection((host, port), timeout=timeout)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection

def steady(host, port, deadline, latencies, problems):
    connection = connect(host, port)
    reader = connection.makefile("rb")
    counter = 0
    while time.time() < deadline:
        counter += 1
        value = b"v%d" % counter
        started = time.perf_counter()
        try:
            connection.sendall(encode("SET", "steady", value) + encode("GET", "steady"))
            ok, header, body = reader.readline(), reader.readline(), reader.readline()
        except OSError as error:
            problems.append("steady client: %s" % error)
            connection = connect(host, port); reader = connection.makefile("rb")
            continue
        latencies.append(time.perf_counter() - started)
        if ok != b"+OK\r\n" or header != b"$%d\r\n" % len(value) or body != value + b"\r\n":
            problems.append("steady client: wrong reply %r %r %r" % (ok, header, body))
        time.sleep(0.001)

def fuzz(host, port, deadline, counts):
    generator = random.Random(1)
    shapes = [
        lambda: bytes(generator.getrandbits(8) for _ in range(generator.randrange(1, 200))),
        lambda: encode("SET", "k", "v")[: generator.randrange(1, 20)],
        lambda: b"*1\r\n$%d\r\n" % generator.choice([16 << 20, 1 << 40, -5]),
        lambda: b"*%d\r\n" % generator.choice([0, -2, 1 << 30]) + b"$3\r\nGET\r\n",
        lambda: b"\r\n" * generator.randrange(1, 50) + b"PING\r\n",
    ]
    while time.time() < deadline:
        try:
            connection = connect(host, port, timeout=1)
            connection.sendall(generator.choice(shapes)())
            try: connection.recv(4096)
            except OSError: pass
            connection.close()
            counts["fuzzed"] += 1
        except OSError:
            counts["fuzz refused"] += 1

def idle_flood(host, port, deadline, counts, held):
    for _ in range(200):
        try: held.append(connect(host, port)); counts["idle"] += 1
        except OSError: counts["idle refused"] += 1
    while time.time() < deadline: time.sleep(0.2)

def half_closes(host, port, deadline, counts, problems):
    while time.time() < deadline:
        try:
            connection = connect(host, port)
            connection.sendall(b"SET half b\r\nGET half\r\n")
            connection.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                chunk = connection.recv(4096)
                if not chunk: break
                reply += chunk
            connection.close()
            if reply != b"+OK\r\n$1\r\nb\r\n": problems.append("half-close: got %r" % reply)
            counts["half-closes"] += 1
        except OSError as error:
            problems.append("half-close: %s" % error)
        time.sleep(0.05)

def slowloris(host, port, deadline, counts):
    command = encode("SET", "slow", "x" * 64)
    while time.time() < deadline:
        try:
            connection = connect(host, port)
            for byte in command:
                if time.time() >= deadline: break
                connection.sendall(bytes([byte])); time.sleep(0.1)
            connection.close()
            counts["slowloris"] += 1
        except OSError:
            counts["slowloris cut"] += 1

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seconds", type=float, default=60)
    options = parser.parse_args()
    if not options.host.startswith("127.") and options.host != "::1":
        parser.error("hostile clients go to loopback addresses only")
    deadline = time.time() + options.seconds
    latencies, problems, held = [], [], []
    counts = {key: 0 for key in ["fuzzed", "fuzz refused", "idle", "idle refused", "half-closes", "slowloris", "slowloris cut"]}
    threads = [threading.Thread(target=steady, args=(options.host, options.port, deadline, latencies, problems))]
    threads += [threading.Thread(target=fuzz, args=(options.host, options.port, deadline, counts)) for _ in range(2)]
    threads += [threading.Thread(target=idle_flood, args=(options.host, options.port, deadline, counts, held)),
                threading.Thread(target=half_closes, args=(options.host, options.port, deadline, counts, problems)),
                threading.Thread(target=slowloris, args=(options.host, options.port, deadline, counts))]
    for thread in threads: thread.start()
    for thread in threads: thread.join()
    for connection in held: connection.close()
    latencies.sort()
    def percentile(p): return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else None
    result = {"requests": len(latencies), "p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "max_ms": percentile(1.0),
              "problems": len(problems), "hostile": counts}
    for problem in problems[:10]: print("problem:", problem)
    print(json.dumps(result))
    return 1 if problems or not latencies else 0

if __name__ == "__main__":
    raise SystemExit(main())
