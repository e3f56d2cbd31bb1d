"""What an application does with redis-py (Debian's python3-redis), against the server on the
port given: every result is printed as one line, so that two servers can be compared line by
line (the appliance's test runs it against redis-server and the appliance in the same run).

Only what the appliance serves (issue 20 lists what is missing)."""

import sys

import redis


def main(port):
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)
    out = []

    def show(label, value):
        out.append(f"{label}: {value!r}")

    show("ping", r.ping())
    show("client name", (r.client_setname("app-1"), r.client_getname()))
    r.flushall()

    # A session store: strings with expiry, counters.
    show("set", r.set("session:ada", "token-1", ex=300))
    show("get", r.get("session:ada"))
    show("ttl in range", 0 < r.ttl("session:ada") <= 300)
    show("set nx taken", r.set("session:ada", "token-2", nx=True))
    show("getset", r.getset("session:ada", "token-3"))
    show("incr", [r.incr("visits") for _ in range(5)])
    show("incrby", r.incrby("visits", 10))
    show("decr", r.decr("visits"))
    show("mset", r.mset({"a": "1", "b": "2", "c": "3"}))
    show("mget", r.mget(["a", "b", "missing", "c"]))
    show("append", r.append("a", "23"))
    show("strlen", r.strlen("a"))
    show("getrange", r.getrange("session:ada", 0, 4))

    # A user profile in a hash.
    show("hset", r.hset("user:1", mapping={"name": "Ada", "lang": "Swift", "karma": "10"}))
    show("hget", r.hget("user:1", "name"))
    show("hincrby", r.hincrby("user:1", "karma", 5))
    show("hgetall", sorted(r.hgetall("user:1").items()))
    show("hexists", (r.hexists("user:1", "lang"), r.hexists("user:1", "nope")))
    show("hdel", r.hdel("user:1", "lang"))
    show("hlen", r.hlen("user:1"))

    # A job queue in a list.
    show("rpush", r.rpush("jobs", *[f"job{i}" for i in range(10)]))
    show("lpop", r.lpop("jobs"))
    show("rpop count", r.rpop("jobs", 2))
    show("lrange", r.lrange("jobs", 0, -1))
    show("lindex", r.lindex("jobs", 2))
    show("ltrim", r.ltrim("jobs", 1, 3))
    show("llen", r.llen("jobs"))
    show("lmove", r.lmove("jobs", "done", "LEFT", "RIGHT"))
    show("lrange done", r.lrange("done", 0, -1))

    # Tags in sets (replies of unordered commands compared sorted).
    show("sadd", r.sadd("tags:1", "swift", "kvm", "redis"))
    show("sadd", r.sadd("tags:2", "swift", "unikernel"))
    show("smembers", sorted(r.smembers("tags:1")))
    show("sinter", sorted(r.sinter("tags:1", "tags:2")))
    show("sunion", sorted(r.sunion("tags:1", "tags:2")))
    show("sismember", r.sismember("tags:1", "kvm"))
    show("scard", r.scard("tags:2"))

    # A leaderboard in a sorted set.
    show("zadd", r.zadd("board", {"ada": 30, "grace": 50, "linus": 20, "ken": 50}))
    show("zincrby", r.zincrby("board", 15, "ada"))
    show("zrange withscores", r.zrange("board", 0, -1, withscores=True))
    show("zrevrange", r.zrevrange("board", 0, 1))
    show("zrangebyscore", r.zrangebyscore("board", 20, 45))
    show("zrank", (r.zrank("board", "ada"), r.zrevrank("board", "linus")))
    show("zscore", r.zscore("board", "grace"))
    show("zcard", r.zcard("board"))
    show("zrem", r.zrem("board", "ken"))

    # Pipelines: one round trip for many commands.
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"bulk:{i}", i)
    for i in range(0, 200, 20):
        pipe.get(f"bulk:{i}")
    pipe.incr("bulk:counter")
    show("pipeline", pipe.execute()[-11:])
    show("keys", sorted(r.keys("bulk:1?")))
    show("exists", r.exists("bulk:1", "bulk:2", "nope"))
    show("type", [r.type(k) for k in ["a", "user:1", "jobs", "tags:1", "board", "nope"]])
    show("rename", r.rename("a", "a2"))
    show("expire", r.expire("a2", 100))
    show("persist", r.persist("a2"))
    show("ttl", r.ttl("a2"))
    show("delete", r.delete("b", "c", "nope"))
    show("dbsize", r.dbsize())

    # Transactions: redis-py's default pipeline is MULTI ... EXEC.
    pipe = r.pipeline()
    pipe.incr("stock", 10).decr("stock").rpush("orders", "o1", "o2").lrange("orders", 0, -1)
    show("transaction", pipe.execute())
    pipe = r.pipeline()
    pipe.set("t", "1").lpush("t", "x").incr("stock")
    show("transaction with a failing command", [repr(v) if isinstance(v, Exception) else v for v in pipe.execute(raise_on_error=False)])

    # Optimistic locking: WATCH, read, MULTI, write, EXEC; retried when another client wrote.
    other = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)
    attempts = []

    def reserve(pipe):
        stock = int(pipe.get("stock"))
        if not attempts:
            other.decr("stock")  # another client takes one meanwhile: EXEC answers nil, redis-py retries
        attempts.append(stock)
        pipe.multi()
        pipe.set("stock", stock - 1)

    show("watch retry", (r.transaction(reserve, "stock"), attempts, r.get("stock")))
    with r.pipeline() as pipe:
        pipe.watch("stock")
        pipe.multi()
        pipe.get("stock")
        show("watch untouched", pipe.execute())

    # A worker waiting for jobs with blocking pops.
    show("blpop ready", r.blpop(["empty", "jobs"], timeout=1))
    show("blpop timeout", r.blpop("empty", timeout=0.2))
    show("brpoplpush", r.brpoplpush("done", "archive", timeout=1))
    show("bzpopmin", r.bzpopmin("board", timeout=1))

    # Walking the keyspace and large collections with SCAN and its kin.
    show("scan_iter", sorted(r.scan_iter(match="bulk:1*", count=25)))
    show("scan_iter type", sorted(r.scan_iter(_type="hash")))
    show("sscan_iter", sorted(r.sscan_iter("tags:1")))
    show("hscan_iter", sorted(r.hscan_iter("user:1")))
    show("zscan_iter", sorted(r.zscan_iter("board", match="*a*")))

    # What the application does when it gets the types wrong: redis-py raises Redis's error.
    try:
        r.lpush("session:ada", "x")
    except redis.exceptions.ResponseError as error:
        show("wrongtype", str(error))
    try:
        r.incr("user:1")
    except redis.exceptions.ResponseError as error:
        show("wrongtype incr", str(error))

    print("\n".join(out))


if __name__ == "__main__":
    main(int(sys.argv[1]))
