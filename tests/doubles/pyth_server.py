"""A fake Pyth on 127.0.0.1: Hermes ``latest`` and the Benchmarks TradingView shim, over real HTTP.

Serves, with the upstream shapes of feeds.md §1.1 and §2.1:

* ``GET /v2/updates/price/latest?ids[]=<id>&parsed=true`` -> ``{"binary": {...}, "parsed": [{"id":
  "<hex, no 0x>", "price": {"price": "<int str>", "conf": "<int str>", "expo": -8, "publish_time":
  <int>}, "ema_price": {...}, "metadata": {...}}]}``; ids are accepted with or without ``0x`` in
  any case; an unknown id gives **404** ``Price ids not found: <ids>`` (text), unless
  ``ignore_invalid_price_ids=true``. The path may carry a ``/hermes`` prefix (the upgraded host).
* ``GET /v1/shims/tradingview/history?symbol=Crypto.BTC/USD&resolution=&from=&to=`` -> parallel
  arrays ``t,o,h,l,c,v`` (``t`` = bar open, seconds; prices JSON numbers; ``v`` all 0), bars with
  ``from <= t <= to`` (both inclusive); ``{"s": "no_data"}`` when none; ``{"s": "error", "errmsg"}``
  for an unknown symbol or resolution; 422 when a parameter is missing.

Prices are a pure function of ``(seed, feed, second)``: a per-minute log walk from
``history_start`` with a small per-second wiggle, in raw integers at the feed's ``expo``. The latest
update at second ``s`` and the bar containing ``s`` are computed from the same numbers, so history
and latest agree exactly (the close of a minute bar is the price at its last second).

* ``now``: the server's clock in epoch seconds (``None`` = the wall clock). Bars opened after it do
  not exist; the bar containing it is open (partial); ``latest`` is published at ``floor(now)``.
* ``pin_latest(feed_id, price=, conf=, expo=, publish_time=)``: a fixed ``latest`` answer.
* ``add_gap(start, end)``: seconds (minute-granular) the shim has no data for.
* ``api_key``: when set, every request needs ``Authorization: Bearer <key>`` (else 401).
* ``fail_next(kind, times=1, ...)``: the next ``times`` requests (optionally one ``endpoint``:
  ``"hermes"`` or ``"benchmarks"``) answer with a fault from ``FAULTS``.
* ``requests`` / ``count(endpoint)``: every request seen (endpoint, path as sent, query, headers).

Use as a context manager (``with FakePyth(now=...) as fake: fake.url``) or ``start()``/``stop()``.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BTC_ID = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH_ID = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
WRONG_BTC_ID = "e62df6c8b4a85fe1cc8b337a5f8854d9c1f5f59e4cb4ce8b063a492f6ed5b5b6"  # F1: the 0.1.x id

LATEST_PATH = "/v2/updates/price/latest"
HISTORY_PATH = "/v1/shims/tradingview/history"
SIGMA_1M = 0.0007
WIGGLE = 0.0001  # per-second deviation around the minute path
FAULTS = ("429", "500", "503", "401", "slow", "malformed", "missing_id", "missing_field", "tv_error")


@dataclass(frozen=True)
class Feed:
    feed_id: str
    symbol: str
    start_price: float
    expo: int = -8


DEFAULT_FEEDS = (
    Feed(BTC_ID, "Crypto.BTC/USD", 61_400.0),
    Feed(ETH_ID, "Crypto.ETH/USD", 3_300.0),
)


@dataclass
class Fault:
    kind: str
    times: int = 1
    retry_after: str | None = None
    delay: float = 1.0
    endpoint: str | None = None
    errmsg: str = "internal error"


@dataclass
class SeenRequest:
    endpoint: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str] = field(default_factory=dict)


def _norm(feed_id: str) -> str:
    return feed_id.strip().lower().removeprefix("0x")


def _resolution_seconds(text: str) -> int | None:
    text = text.strip().upper()
    if text in ("D", "1D"):
        return 86_400
    if text.isdigit() and int(text) in (1, 2, 5, 15, 30, 60, 120, 240, 360, 720):
        return int(text) * 60
    return None


class FakePyth:
    def __init__(
        self,
        *,
        now: float | None = None,
        seed: int = 7,
        history_days: int = 7,
        api_key: str | None = None,
        feeds: tuple[Feed, ...] = DEFAULT_FEEDS,
    ) -> None:
        self.now_s = now
        self.seed = seed
        self.api_key = api_key
        self.feeds = {_norm(f.feed_id): f for f in feeds}
        self.by_symbol = {f.symbol: f for f in feeds}
        start = int(self.now()) // 86_400 * 86_400 - history_days * 86_400
        self.history_start = start  # no data before this second
        self.gaps: list[tuple[int, int]] = []
        self.pinned: dict[str, dict[str, Any]] = {}
        self.requests: list[SeenRequest] = []
        self._faults: list[Fault] = []
        self._anchors: dict[str, list[float]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._minutes: dict[tuple[str, int], tuple[int, int, int, int]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FakePyth:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-pyth", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePyth:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- control ------------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() if self.now_s is None else self.now_s

    def fail_next(
        self,
        kind: str,
        times: int = 1,
        *,
        retry_after: str | None = None,
        delay: float = 1.0,
        endpoint: str | None = None,
        errmsg: str = "internal error",
    ) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; use one of {FAULTS}")
        with self._lock:
            self._faults.append(Fault(kind, times, retry_after, delay, endpoint, errmsg))

    def pin_latest(self, feed_id: str, *, price: str, conf: str, expo: int, publish_time: int) -> None:
        self.pinned[_norm(feed_id)] = {"price": price, "conf": conf, "expo": expo, "publish_time": publish_time}

    def add_gap(self, start: int, end: int) -> None:
        """No shim data for minutes opening in ``[start, end]`` (epoch seconds)."""
        self.gaps.append((start, end))

    def count(self, endpoint: str | None = None) -> int:
        return sum(1 for r in self.requests if endpoint is None or r.endpoint == endpoint)

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (None, endpoint):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- prices -------------------------------------------------------------------------------------
    def _log_anchor(self, feed: Feed, minute: int) -> float:
        """Log price at the start of ``minute`` (index since the epoch), a seeded walk."""
        first = self.history_start // 60
        with self._lock:  # always extended in order from history_start: one seeded stream per feed
            path = self._anchors.setdefault(feed.feed_id, [math.log(feed.start_price)])
            rng = self._rngs.setdefault(feed.feed_id, random.Random(f"{self.seed}|{feed.feed_id}"))
            while len(path) <= minute - first:
                path.append(path[-1] + SIGMA_1M * rng.gauss(0.0, 1.0))
            return path[max(0, minute - first)]

    def _raw_seconds(self, feed: Feed, first: int, last: int) -> list[int]:
        """Integer prices (units of ``10**expo``) at seconds ``first..last`` of one minute."""
        minute = first // 60
        a, b = self._log_anchor(feed, minute), self._log_anchor(feed, minute + 1)
        scale, prefix = 10 ** (-feed.expo), f"{self.seed}|{feed.feed_id}|".encode()
        out = []
        for second in range(first, last + 1):
            u = zlib.crc32(prefix + str(second).encode()) / 2**32 * 2 - 1
            out.append(int(round(math.exp(a + (b - a) * (second % 60) / 60 + WIGGLE * u) * scale)))
        return out

    def raw_price(self, feed_id: str, second: int) -> int:
        """Integer price at ``second`` in units of ``10**expo``."""
        return self._raw_seconds(self.feeds[_norm(feed_id)], second, second)[0]

    def price(self, feed_id: str, second: int) -> float:
        feed = self.feeds[_norm(feed_id)]
        return float(Decimal(self.raw_price(feed_id, second)).scaleb(feed.expo))

    def _in_gap(self, t: int) -> bool:
        return any(a <= t <= b for a, b in self.gaps)

    def _minute_bar(self, feed: Feed, t: int, now: int) -> tuple[int, int, int, int] | None:
        """Raw (o, h, l, c) of the minute opening at ``t``, up to ``now``; None if no data."""
        if t < self.history_start or t > now or self._in_gap(t):
            return None
        last = min(t + 59, now)
        key = (feed.feed_id, t)
        cached = self._minutes.get(key) if last == t + 59 else None
        if cached is not None:
            return cached
        prices = self._raw_seconds(feed, t, last)
        bar = (prices[0], max(prices), min(prices), prices[-1])
        if last == t + 59:
            self._minutes[key] = bar
        return bar

    def bar(self, feed_id: str, t: int, res: int, now: int | None = None) -> tuple[float, float, float, float] | None:
        """Scaled (o, h, l, c) of the bar of ``res`` seconds opening at ``t``; None if no data."""
        feed = self.feeds[_norm(feed_id)]
        now = int(self.now()) if now is None else now
        minutes = [m for m in (self._minute_bar(feed, s, now) for s in range(t, t + res, 60)) if m is not None]
        if not minutes:
            return None
        raw = (minutes[0][0], max(m[1] for m in minutes), min(m[2] for m in minutes), minutes[-1][3])
        return tuple(float(Decimal(v).scaleb(feed.expo)) for v in raw)  # type: ignore[return-value]

    def latest(self, feed_id: str) -> dict[str, Any]:
        """The ``parsed[]`` entry Hermes would serve now."""
        fid = _norm(feed_id)
        feed = self.feeds[fid]
        pinned = self.pinned.get(fid)
        if pinned is not None:
            price = dict(pinned)
        else:
            publish_time = int(self.now())
            raw = self.raw_price(fid, publish_time)
            u = zlib.crc32(f"conf|{self.seed}|{fid}|{publish_time}".encode()) / 2**32 * 2 - 1
            conf = int(raw * 3e-4 * (1 + 0.3 * u))
            price = {"price": str(raw), "conf": str(conf), "expo": feed.expo, "publish_time": publish_time}
        ema = {
            "price": str(int(price["price"]) - 1000),
            "conf": price["conf"],
            "expo": price["expo"],
            "publish_time": price["publish_time"],
        }
        metadata = {
            "slot": 188_000_000 + price["publish_time"] % 1_000_000,
            "proof_available_time": price["publish_time"] + 1,
            "prev_publish_time": price["publish_time"] - 1,
        }
        return {"id": fid, "price": price, "ema_price": ema, "metadata": metadata}

    # -- endpoints ----------------------------------------------------------------------------------
    def hermes_latest(self, query: dict[str, list[str]], fault: Fault | None) -> tuple[int, str, bytes]:
        ids = query.get("ids[]", [])
        if not ids:
            return 400, "text/plain", b"Missing query parameter ids[]"
        wanted = [_norm(i) for i in ids]
        unknown = [i for i in wanted if i not in self.feeds]
        ignore = query.get("ignore_invalid_price_ids", ["false"])[0].lower() == "true"
        if unknown and not ignore:
            return 404, "text/plain", f"Price ids not found: {', '.join(unknown)}".encode()
        entries = [self.latest(i) for i in wanted if i in self.feeds]
        if fault and fault.kind == "missing_id":
            entries = [self.latest(i) for i in self.feeds if i not in wanted]
        if fault and fault.kind == "missing_field":
            for entry in entries:
                entry["price"] = {k: v for k, v in entry["price"].items() if k != "publish_time"}
        body: dict[str, Any] = {"binary": {"encoding": "hex", "data": ["504e415501000000" + "00" * 16]}}
        if query.get("parsed", ["true"])[0].lower() != "false":
            body["parsed"] = entries
        return 200, "application/json", json.dumps(body).encode()

    def tv_history(self, query: dict[str, list[str]], fault: Fault | None) -> tuple[int, str, bytes]:
        missing = [k for k in ("symbol", "resolution", "from", "to") if k not in query]
        if missing:
            detail = [{"loc": ["query", k], "msg": "field required", "type": "value_error.missing"} for k in missing]
            return 422, "application/json", json.dumps({"detail": detail}).encode()
        symbol = query["symbol"][0]
        if fault and fault.kind == "tv_error":
            return 200, "application/json", json.dumps({"s": "error", "errmsg": fault.errmsg}).encode()
        feed = self.by_symbol.get(symbol)
        if feed is None:
            return 200, "application/json", json.dumps({"s": "error", "errmsg": f"Symbol not found: {symbol}"}).encode()
        res = _resolution_seconds(query["resolution"][0])
        if res is None:
            return (
                200,
                "application/json",
                json.dumps({"s": "error", "errmsg": f"Unsupported resolution: {query['resolution'][0]}"}).encode(),
            )
        try:
            start, end = int(query["from"][0]), int(query["to"][0])
        except ValueError:
            return 422, "application/json", json.dumps({"detail": "from/to must be integers"}).encode()
        now = int(self.now())
        first = max(start + (-start) % res, self.history_start // res * res)
        last = min(end, now)
        arrays: dict[str, list[Any]] = {k: [] for k in "tohlcv"}
        t = first
        while t <= last:
            bar = self.bar(feed.feed_id, t, res, now)
            if bar is not None:
                for key, value in zip("tohlcv", (t, *bar, 0), strict=True):
                    arrays[key].append(value)
            t += res
        if not arrays["t"]:
            return 200, "application/json", json.dumps({"s": "no_data"}).encode()
        if fault and fault.kind == "missing_field":
            del arrays["c"]
        return 200, "application/json", json.dumps({"s": "ok", **arrays}).encode()


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakePyth
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall per request

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the test output clean
        pass

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.server_fake
        parts = urlsplit(self.path)
        path = parts.path.removeprefix("/hermes")
        query = parse_qs(parts.query, keep_blank_values=True)
        endpoint = {LATEST_PATH: "hermes", HISTORY_PATH: "benchmarks"}.get(path, "other")
        fake.requests.append(SeenRequest(endpoint, parts.path, query, {k: v for k, v in self.headers.items()}))
        if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._send(401, "text/plain", b"Unauthorized: a valid API key is required (Authorization: Bearer <key>)")
            return
        if endpoint == "other":
            self._send(404, "application/json", b'{"detail": "Not Found"}')
            return
        fault = fake._take_fault(endpoint)
        if fault is not None:
            if fault.kind == "429":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                self._send(429, "text/plain", b"Too Many Requests", headers)
                return
            if fault.kind in ("500", "503", "401"):
                self._send(int(fault.kind), "text/plain", f"fault {fault.kind}".encode())
                return
            if fault.kind == "malformed":
                self._send(200, "application/json", b'{"parsed": [{"id": "e62d')
                return
            if fault.kind == "slow":
                time.sleep(fault.delay)
        handler = fake.hermes_latest if endpoint == "hermes" else fake.tv_history
        self._send(*handler(query, fault))
