"""A fake Binance spot REST server on 127.0.0.1: real HTTP, Binance's JSON, real pagination.

Serves ``/api/v3/ping``, ``/time``, ``/exchangeInfo``, ``/klines`` and ``/aggTrades`` the way
``api.binance.com`` does (shapes from feeds.md §3; prices and quantities as strings, times in ms,
rows ascending, ``startTime``/``endTime`` inclusive and matched on the open / trade time,
``limit`` default 500 and max 1000). Nothing is stored: every candle and trade is a pure function
of ``(seed, symbol, interval, time)``, so 43,200 one-minute candles cost nothing.

* ``now_ms``: the server's clock (``None`` = the wall clock). Candles open after it do not exist;
  the candle containing it is the *open* candle, whose close changes from one call to the next;
  the ``Date`` header is this clock too.
* ``add_gap(symbol, interval, start_ms, end_ms)``: buckets Binance does not serve (maintenance).
* ``fail_next(kind, times=1, ...)``: the next ``times`` requests (optionally only on one path)
  answer with a fault; see ``FAULTS``.
* ``requests``: every request seen (path and query); ``used_weight``: the
  ``X-MBX-USED-WEIGHT-1M`` counter (klines 2, aggTrades 4, time/ping 1, exchangeInfo 20), reset
  when the server's minute changes; set it to simulate other clients on the same IP.

Use as a context manager (``with FakeBinance() as fake: fake.url``) or ``start()``/``stop()``.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
WEIGHTS = {
    "/api/v3/klines": 2,
    "/api/v3/aggTrades": 4,
    "/api/v3/time": 1,
    "/api/v3/ping": 1,
    "/api/v3/exchangeInfo": 20,
}
START_PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}
SIGMA_1M = 0.0007  # ≈ 50 % annualised, as in feeds.md §6
BLOCK_STEPS = 600  # the walk is a Brownian bridge between anchors every 600 candles
TRADE_SLOTS = 8  # aggregate ids: second * 8 + index (at most 8 trades per second)

MSG_429 = (
    "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
MSG_451 = (
    "Service unavailable from a restricted location according to 'b. Eligibility' in "
    "https://www.binance.com/en/terms. Please contact customer service if you believe you "
    "received this message in error."
)

FAULTS = (
    "429",
    "418",
    "451",
    "500",
    "503_html",
    "slow",
    "malformed",
    "wrong_shape",
    "empty",
    "invalid_symbol",
    "401",
    "403",
    "drop",
)


@dataclass
class Fault:
    kind: str
    times: int = 1
    retry_after: int | None = None
    delay: float = 0.0
    path: str | None = None


def _fmt(value: float, decimals: int) -> str:
    return f"{round(value, decimals):.8f}"


class _Walk:
    """Deterministic log-price walk for one (symbol, interval): anchors + bridged random steps."""

    def __init__(self, seed: int, symbol: str, interval_ms: int, start_price: float) -> None:
        self.seed, self.symbol, self.interval_ms = seed, symbol, interval_ms
        self.log_p0 = math.log(start_price)
        self.sigma = SIGMA_1M * math.sqrt(interval_ms / 60_000)
        self.blocks: OrderedDict[int, list[tuple[float, ...]]] = OrderedDict()
        self.lock = threading.Lock()

    def _rng(self, *parts: Any) -> random.Random:
        return random.Random(zlib.crc32(f"{self.seed}|{self.symbol}|{'|'.join(map(str, parts))}".encode()))

    def anchor(self, t_ms: int) -> float:
        """Log price at an absolute time: value noise over octaves of 1 h .. ~2 years (Brownian scaling)."""
        total = self.log_p0
        period = 3_600_000
        while period <= 2**14 * 3_600_000:
            k, frac = divmod(t_ms, period)
            a = self._rng("anchor", period, k).gauss(0, 1)
            b = self._rng("anchor", period, k + 1).gauss(0, 1)
            weight = 0.5 * SIGMA_1M * math.sqrt(period / 60_000)
            total += weight * (a + (b - a) * frac / period)
            period *= 4
        return total

    def block(self, index: int) -> list[tuple[float, ...]]:
        """Per candle of the block: (open, close, high, low, volume, trades, taker_share) as floats."""
        cached = self.blocks.get(index)
        if cached is not None:
            self.blocks.move_to_end(index)
            return cached
        rng = self._rng("block", self.interval_ms, index)
        span = BLOCK_STEPS * self.interval_ms
        x0, x1 = self.anchor(index * span), self.anchor((index + 1) * span)
        walk = [0.0]
        for _ in range(BLOCK_STEPS):
            walk.append(walk[-1] + self.sigma * rng.gauss(0, 1))
        path = [x0 + w - (i / BLOCK_STEPS) * (walk[-1] - (x1 - x0)) for i, w in enumerate(walk)]
        candles = []
        for i in range(BLOCK_STEPS):
            o, c = math.exp(path[i]), math.exp(path[i + 1])
            h = max(o, c) * math.exp(abs(rng.gauss(0, self.sigma * 0.5)))
            low = min(o, c) * math.exp(-abs(rng.gauss(0, self.sigma * 0.5)))
            scale = self.interval_ms / 60_000
            volume = 20 * scale * rng.lognormvariate(0, 0.5) * (1 + 5 * abs(path[i + 1] - path[i]) / self.sigma)
            trades = max(1, int(volume * 40 * rng.uniform(0.5, 1.5)))
            candles.append((o, c, h, low, volume, float(trades), rng.uniform(0.3, 0.7)))
        self.blocks[index] = candles
        if len(self.blocks) > 512:
            self.blocks.popitem(last=False)
        return candles

    def candle(self, open_ms: int) -> tuple[float, ...]:
        step = open_ms // self.interval_ms
        with self.lock:
            return self.block(step // BLOCK_STEPS)[step % BLOCK_STEPS]


class FakeBinance:
    """The server; see the module docstring."""

    def __init__(
        self, seed: int = 7, now_ms: int | None = None, symbols: dict[str, float] | None = None, send_date: bool = True
    ) -> None:
        self.seed = seed
        self.now_ms = now_ms
        self.symbols = dict(symbols or START_PRICES)
        self.send_date = send_date
        self.gaps: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.used_weight = 0
        self._weight_minute: int | None = None
        self._walks: dict[tuple[str, int], _Walk] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()  # wakes slow handlers on stop()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeBinance:
        handler = type("Handler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False  # a "slow" handler must not hold up stop()
        self._server = server
        self._release.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-binance", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # knobs ----------------------------------------------------------------------------------
    def now(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def fail_next(
        self, kind: str, times: int = 1, retry_after: int | None = None, delay: float = 0.0, path: str | None = None
    ) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; use one of {FAULTS}")
        with self._lock:
            self.faults.append(Fault(kind, times, retry_after, delay, path))

    def add_gap(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> None:
        """Open times in [start_ms, end_ms] are missing (no row at all, as during maintenance)."""
        self.gaps.setdefault((symbol, interval), []).append((start_ms, end_ms))

    def count(self, path: str | None = None) -> int:
        return sum(1 for p, _ in self.requests if path is None or p == path)

    # the generator (also what tests compare with) ---------------------------------------------
    def walk(self, symbol: str, interval: str) -> _Walk:
        key = (symbol, INTERVAL_MS[interval])
        with self._lock:
            if key not in self._walks:
                self._walks[key] = _Walk(self.seed, symbol, INTERVAL_MS[interval], self.symbols[symbol])
            return self._walks[key]

    def kline(self, symbol: str, interval: str, open_ms: int, now_ms: int | None = None, jitter: int = 0) -> list[Any]:
        """The 12-field row for the candle opening at ``open_ms`` (partial if ``now_ms`` is inside it)."""
        iv = INTERVAL_MS[interval]
        o, c, h, low, volume, trades, taker = self.walk(symbol, interval).candle(open_ms)
        if now_ms is not None and open_ms <= now_ms < open_ms + iv:  # the open candle
            share = (now_ms - open_ms + 1) / iv
            noise = random.Random(zlib.crc32(f"{self.seed}|{symbol}|{open_ms}|{jitter}".encode())).gauss(0, 2e-4)
            c = (o + (c - o) * share) * (1 + noise)
            h, low = max(o, c, o + (h - max(o, c)) * share), min(o, c, o - (min(o, c) - low) * share)
            volume, trades = volume * share, max(1.0, trades * share)
        ro, rc = round(o, 2), round(c, 2)
        rh, rl = max(round(h, 2), ro, rc), min(round(low, 2), ro, rc)
        vol = round(volume, 5)
        quote = vol * (ro + rc) / 2
        return [
            open_ms,
            f"{ro:.2f}000000",
            f"{rh:.2f}000000",
            f"{rl:.2f}000000",
            f"{rc:.2f}000000",
            f"{vol:.5f}000",
            open_ms + iv - 1,
            f"{quote:.8f}",
            int(trades),
            f"{vol * taker:.5f}000",
            f"{quote * taker:.8f}",
            "0",
        ]

    def trades_in_second(self, symbol: str, second: int) -> list[dict[str, Any]]:
        """Aggregate trades with ``T`` in [second*1000, second*1000+999]; about 30 % share a millisecond."""
        rng = random.Random(zlib.crc32(f"{self.seed}|{symbol}|trades|{second}".encode()))
        n = rng.choice((0, 1, 2, 3, 4, 5, 6))
        offsets: list[int] = []
        for _ in range(n):
            offsets.append(offsets[-1] if offsets and rng.random() < 0.3 else rng.randrange(1000))
        offsets.sort()
        base = self.walk(symbol, "1s").candle(second * 1000)[0]
        out = []
        for index, offset in enumerate(offsets):
            agg = second * TRADE_SLOTS + index
            first = agg * 3
            out.append(
                {
                    "a": agg,
                    "p": _fmt(base * (1 + rng.gauss(0, 1e-4)), 2),
                    "q": _fmt(rng.lognormvariate(-4, 1.2), 5),
                    "f": first,
                    "l": first + rng.randrange(3),
                    "T": second * 1000 + offset,
                    "m": rng.random() < 0.5,
                    "M": True,
                }
            )
        return out

    # endpoints ------------------------------------------------------------------------------
    def _in_gap(self, symbol: str, interval: str, open_ms: int) -> bool:
        return any(a <= open_ms <= b for a, b in self.gaps.get((symbol, interval), ()))

    def klines(self, q: dict[str, str], now_ms: int, jitter: int) -> tuple[int, Any]:
        symbol, interval = q["symbol"], q["interval"]
        iv = INTERVAL_MS[interval]
        limit = int(q.get("limit", 500))
        last_open = now_ms - now_ms % iv  # the open candle; nothing after it exists
        rows: list[list[Any]] = []
        if "startTime" in q:
            t = -(-int(q["startTime"]) // iv) * iv
            stop = min(int(q.get("endTime", last_open)), last_open)
            while t <= stop and len(rows) < limit:
                if not self._in_gap(symbol, interval, t):
                    rows.append(self.kline(symbol, interval, t, now_ms, jitter))
                t += iv
        else:
            end = min(int(q.get("endTime", last_open)), last_open)
            t = end - end % iv
            while len(rows) < limit and t >= 0:
                if not self._in_gap(symbol, interval, t):
                    rows.append(self.kline(symbol, interval, t, now_ms, jitter))
                t -= iv
            rows.reverse()
        return 200, rows

    def agg_trades(self, q: dict[str, str], now_ms: int) -> tuple[int, Any]:
        symbol = q["symbol"]
        limit = int(q.get("limit", 500))
        out: list[dict[str, Any]] = []
        if "fromId" in q or "startTime" in q:
            if "fromId" in q:
                lo_ms, first_id = int(q["fromId"]) // TRADE_SLOTS * 1000, int(q["fromId"])
            else:
                lo_ms, first_id = int(q["startTime"]), -1
            hi_ms = min(int(q.get("endTime", now_ms)), now_ms)
            second = lo_ms // 1000
            while len(out) < limit and second * 1000 <= hi_ms:
                for trade in self.trades_in_second(symbol, second):
                    if lo_ms <= trade["T"] <= hi_ms and trade["a"] >= first_id and len(out) < limit:
                        out.append(trade)
                second += 1
        else:
            hi_ms = min(int(q.get("endTime", now_ms)), now_ms)
            second = hi_ms // 1000
            while len(out) < limit and second >= 0:
                for trade in reversed(self.trades_in_second(symbol, second)):
                    if trade["T"] <= hi_ms and len(out) < limit:
                        out.append(trade)
                second -= 1
            out.reverse()
        return 200, out

    def answer(self, path: str, q: dict[str, str]) -> tuple[int, Any]:
        """Status and JSON body of a healthy Binance for this request."""
        now_ms = self.now()
        if path == "/api/v3/ping":
            return 200, {}
        if path == "/api/v3/time":
            return 200, {"serverTime": now_ms}
        if path == "/api/v3/exchangeInfo":
            return 200, {
                "timezone": "UTC",
                "serverTime": now_ms,
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [
                    {"symbol": s, "status": "TRADING", "baseAsset": s.removesuffix("USDT"), "quoteAsset": "USDT"}
                    for s in self.symbols
                ],
            }
        if path not in ("/api/v3/klines", "/api/v3/aggTrades"):
            return 404, {"code": -1, "msg": "Not found."}  # stands in for Binance's HTML 404
        if not q.get("symbol"):
            return 400, {
                "code": -1102,
                "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            }
        if q["symbol"] not in self.symbols:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if "limit" in q and not (q["limit"].isdigit() and 1 <= int(q["limit"]) <= 1000):
            return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
        if "startTime" in q and "endTime" in q and int(q["startTime"]) > int(q["endTime"]):
            return 400, {"code": -1023, "msg": "Start time is greater than end time."}
        if path == "/api/v3/aggTrades":
            return self.agg_trades(q, now_ms)
        if not q.get("interval"):
            return 400, {
                "code": -1102,
                "msg": "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
            }
        if q["interval"] not in INTERVAL_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        return self.klines(q, now_ms, jitter=len(self.requests))

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path is None or fault.path == path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def charge(self, path: str) -> int:
        with self._lock:
            minute = self.now() // 60_000
            if self._weight_minute is not None and minute != self._weight_minute:
                self.used_weight = 0
            self._weight_minute = minute
            self.used_weight += WEIGHTS.get(path, 1)
            return self.used_weight


class _Handler(BaseHTTPRequestHandler):
    fake: FakeBinance
    protocol_version = "HTTP/1.1"
    server_version = "fake-binance"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.fake.now() / 1000 if timestamp is None else timestamp, usegmt=True)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        if self.fake.send_date:
            self.send_header("Date", self.date_time_string())

    def _send(
        self,
        status: int,
        body: bytes | str,
        content_type: str = "application/json;charset=UTF-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        fake = self.fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with fake._lock:
            fake.requests.append((parts.path, query))
        weight = {"X-MBX-USED-WEIGHT-1M": str(fake.charge(parts.path))}
        fault = fake.take_fault(parts.path)
        try:
            if fault is not None and fault.kind != "slow":
                self._fault(fault, weight)
                return
            if fault is not None:
                fake._release.wait(fault.delay)
            status, body = fake.answer(parts.path, query)
            self._send(status, json.dumps(body, separators=(",", ":")), headers=weight)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            pass

    def _fault(self, fault: Fault, weight: dict[str, str]) -> None:
        kind = fault.kind
        retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if kind == "429":
            self._send(429, json.dumps({"code": -1003, "msg": MSG_429}), headers={**weight, **retry})
        elif kind == "418":
            until = self.fake.now() + 1000 * (fault.retry_after or 120)
            msg = f"Way too much request weight used; IP banned until {until}. Please use WebSocket Streams for live updates to avoid bans."
            self._send(418, json.dumps({"code": -1003, "msg": msg}), headers={**weight, **retry})
        elif kind == "451":
            self._send(451, json.dumps({"code": 0, "msg": MSG_451}))
        elif kind == "500":
            self._send(
                500,
                json.dumps({"code": -1000, "msg": "An unknown error occurred while processing the request."}),
                headers=weight,
            )
        elif kind == "503_html":
            self._send(503, "<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html")
        elif kind == "malformed":
            self._send(200, '[[1735689600000,"93576.00000000","93610.', headers=weight)
        elif kind == "wrong_shape":
            self._send(200, json.dumps({"unexpected": [1, 2, 3]}), headers=weight)
        elif kind == "empty":
            self._send(200, "", headers=weight)
        elif kind == "invalid_symbol":
            self._send(400, json.dumps({"code": -1121, "msg": "Invalid symbol."}), headers=weight)
        elif kind == "401":
            self._send(401, json.dumps({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}))
        elif kind == "403":
            self._send(403, "<html><body><h1>403 Forbidden</h1>Request blocked.</body></html>", "text/html")
        elif kind == "drop":
            self.close_connection = True
            self.connection.shutdown(2)


def main() -> None:
    """Serve the double until Ctrl-C: ``python -m tests.doubles.binance_server --port 9100``."""
    import argparse
    from http.server import ThreadingHTTPServer as Server

    parser = argparse.ArgumentParser(description="A local Binance spot REST double (wall clock, seeded prices)")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    fake = FakeBinance(seed=args.seed)
    server = Server(("127.0.0.1", args.port), type("Handler", (_Handler,), {"fake": fake}))
    server.daemon_threads = True
    print(f"fake Binance on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
