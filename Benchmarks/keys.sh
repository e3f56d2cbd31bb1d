#!/usr/bin/env bash
# Loads 1 and 10 million small keys (SET key:N v, redis-cli --pipe) into kvstore-fcalls with
# --memory 4G and into redis-server, alternately, and prints per round: load time, DBSIZE
# and its time, used_memory, FLUSHALL time. Needs release builds (scripts/bench makes them).
# Usage: Benchmarks/keys.sh [rounds]   (about 2 minutes a round)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
work=$(mktemp -d)
trap 'pkill -f "listen 127.0.0.1:7391" || true; redis-cli -p 7392 shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
for count in 1000000 10000000; do
    python3 -c "
import sys
out = sys.stdout.buffer
for i in range($count):
    k = b'key:%d' % i
    out.write(b'*3\r\n\$3\r\nSET\r\n\$%d\r\n%s\r\n\$1\r\nv\r\n' % (len(k), k))" > "$work/$count.resp"
done
seconds() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
for round in $(seq "$rounds"); do
    for server in kvstore-fcalls redis-server; do
        if [ "$server" = kvstore-fcalls ]; then
            .build/release/flexosd launch --memory 4G --listen 127.0.0.1:7391 Guest/build/kvstore-fcalls > /dev/null 2>&1 &
            port=7391
        else
            redis-server --port 7392 --save "" --appendonly no --daemonize yes > /dev/null
            port=7392
        fi
        until redis-cli -p $port ping > /dev/null 2>&1; do sleep 0.2; done
        for count in 1000000 10000000; do
            load=$(seconds redis-cli -p $port --pipe < "$work/$count.resp")
            keys=$(redis-cli -p $port dbsize)
            dbsize=$(seconds redis-cli -p $port dbsize)
            used=$(redis-cli -p $port info memory | tr -d '\r' | sed -n 's/^used_memory://p')
            flush=$(seconds redis-cli -p $port flushall)
            echo "round $round, $server, $count SETs: load ${load}s, DBSIZE $keys (${dbsize}s), used_memory $used ($((used / count)) B a key), FLUSHALL ${flush}s"
        done
        if [ "$server" = kvstore-fcalls ]; then pkill -f "listen 127.0.0.1:7391"; else redis-cli -p 7392 shutdown nosave > /dev/null 2>&1 || true; fi
        sleep 1
    done
done
