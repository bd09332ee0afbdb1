"""Pyth: live ticks from Hermes, history (candles, past ticks) from the Benchmarks TradingView shim.

Endpoints (see the feeds reference, sections 1 and 2):

* Hermes ``GET /v2/updates/price/latest?ids[]=<id>&parsed=true``: the latest update of one feed.
  ``price``/``conf`` are integer strings scaled by ``10**expo``; ``publish_time`` is unix seconds.
* Benchmarks ``GET /v1/shims/tradingview/history?symbol=Crypto.BTC/USD&resolution=&from=&to=``:
  TradingView UDF bars (``t`` = bar open, seconds; prices already scaled), ``{"s": "no_data"}``
  for an empty window, ``{"s": "error", "errmsg"}`` for a refusal.

Choices:

* **Kind ``candle``**: one shim request per ``fetch``, at the resolution of the granularity
  (``RESOLUTIONS``). ``ts_event`` is the bucket open; ``volume`` is the shim's ``v`` (an oracle has
  no volume: 0). A bucket is final once ``t + step + FINALITY_LAG_SECONDS <= now``; the bucket still
  open is returned with ``final=False``.
* **Kind ``tick``, live**: when the window reaches the present (``end >= now - LIVE_SLACK_SECONDS``)
  and starts at most ``LIVE_SPAN_SECONDS`` ago (a poll, not a backfill), one Hermes ``latest`` request:
  ``ts_event = publish_time`` (the event time, never the local clock), ``values = {price, conf}``.
  A Hermes tick is final as published (the update at a publish time never changes).
  If the latest update falls outside ``[start, end]`` (nothing new since ``start``, or a local clock
  behind Hermes') the answer is ``[]``.
* **Kind ``tick``, history** (any other window): bar *closes* from the shim as ticks stamped at
  the bar's close time ``t + step`` (the close is the last price of the bar, so stamping it at the
  open would leak the future). The resolution is that of the granularity when the shim has it,
  else 1 minute filtered to the granularity grid; sub-minute granularities get one tick a minute
  (the shim's finest). History ticks carry ``{price}`` only: the shim has no confidence.
  Hermes ``/v2/updates/price/{t}`` would cost one request per tick against 30 requests / 10 s.
* **Paging**: ``page_limit`` = 1440 bars = one shim request (1 day at 1 minute, as advised: the
  shim's maximum range is undocumented). A ``fetch`` covers ``[start, start + 1440 steps)`` of the
  window at most; the caller pages by moving ``start`` past the last record. A page can be short or
  empty because of a gap upstream (``no_data``): that is not the end of the data.
* **Errors**: every upstream call runs in ``Backoff(attempts=max_retries)``. 5xx, timeouts,
  connection errors, malformed JSON, missing fields or a response without the requested feed
  -> ``FeedUnavailable`` (retried); 429 -> ``RateLimited`` (``Retry-After``, else Pyth's documented
  60 s penalty); 401/403 (API key), Hermes 404 (unknown feed id), shim errors naming the symbol,
  unsupported granularity/kind, a subject without a feed id -> ``FeedPermanentError``.
  No price is ever made up: when Pyth does not answer with one, the fetch raises.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import httpx

from coordinator_core.clock import Clock, SystemClock, ensure_utc
from coordinator_core.config import GRANULARITY_SECONDS
from coordinator_core.errors import FeedPermanentError, FeedUnavailable, RateLimited
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.feeds.retry import Backoff, retry_after_seconds

log = logging.getLogger(__name__)

# granularity -> TradingView shim resolution (minutes, or "1D")
RESOLUTIONS = {
    "1m": "1",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "1D",
}
PAGE_BARS = 1440  # bars per shim request: one day at 1 minute
FINALITY_LAG_SECONDS = 5  # a tick / closed bar is final once this old
LIVE_SLACK_SECONDS = 5  # end >= now - slack: the window reaches the present
LIVE_SPAN_SECONDS = 120  # ... and start >= now - span: a live poll (else history, paged)
RATE_LIMIT_PENALTY_SECONDS = 60.0  # Pyth answers 429 for 60 s once past its limit
STALE_SECONDS = 30  # a latest update older than this is logged as a stale feed
KEY_HINT = "set PYTH_API_KEY; Hermes requires an API key since 2026-08-26"

HERMES = "Pyth Hermes"
BENCHMARKS = "Pyth Benchmarks"
LATEST_PATH = "/v2/updates/price/latest"
HISTORY_PATH = "/v1/shims/tradingview/history"


def normalize_id(feed_id: str) -> str:
    """Feed ids compare as lower-case hex without ``0x`` (Hermes answers them that way)."""
    return feed_id.strip().lower().removeprefix("0x")


def benchmarks_symbol(subject: str) -> str:
    return f"Crypto.{subject.strip().upper()}/USD"


# -- pure codecs ------------------------------------------------------------------------------------


def _scaled(raw: Any, expo: int, what: str) -> Decimal:
    """``raw * 10**expo`` exactly; ``raw`` is Hermes' integer string (an int is tolerated)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise FeedUnavailable(f"{HERMES}: {what} {raw!r} is not an integer string")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise FeedUnavailable(f"{HERMES}: {what} {raw!r} is not an integer string") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise FeedUnavailable(f"{HERMES}: {what} {raw!r} is not an integer string")
    return value.scaleb(expo)


def find_parsed(body: Any, feed_id: str) -> dict[str, Any]:
    """The ``parsed[]`` entry of ``feed_id`` in a Hermes price-update body."""
    if not isinstance(body, dict):
        raise FeedUnavailable(f"{HERMES}: expected a JSON object, got {type(body).__name__}")
    parsed = body.get("parsed")
    if not isinstance(parsed, list):
        raise FeedUnavailable(f"{HERMES}: the response has no 'parsed' list (was parsed=true sent?)")
    wanted = normalize_id(feed_id)
    for entry in parsed:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and normalize_id(entry["id"]) == wanted:
            return entry
    returned = [e.get("id") for e in parsed if isinstance(e, dict)]
    raise FeedUnavailable(
        f"{HERMES}: the response does not contain feed 0x{wanted} (it has {returned}); no price is made up"
    )


def parsed_to_record(entry: dict[str, Any], subject: str, now: datetime) -> SourceRecord:
    """A Hermes ``parsed[]`` entry -> one tick at its ``publish_time``."""
    price = entry.get("price")
    if not isinstance(price, dict):
        raise FeedUnavailable(f"{HERMES}: feed {entry.get('id')} has no 'price' object")
    expo, publish_time = price.get("expo"), price.get("publish_time")
    if isinstance(expo, bool) or not isinstance(expo, int):
        raise FeedUnavailable(f"{HERMES}: feed {entry.get('id')} price.expo {expo!r} is not an integer")
    if isinstance(publish_time, bool) or not isinstance(publish_time, int) or publish_time <= 0:
        raise FeedUnavailable(
            f"{HERMES}: feed {entry.get('id')} price.publish_time {publish_time!r} is not unix seconds"
        )
    if "price" not in price or "conf" not in price:
        raise FeedUnavailable(f"{HERMES}: feed {entry.get('id')} price lacks 'price' or 'conf'")
    value = _scaled(price["price"], expo, "price.price")
    conf = _scaled(price["conf"], expo, "price.conf")
    if value <= 0:
        raise FeedUnavailable(f"{HERMES}: feed {entry.get('id')} has no valid aggregate price ({price['price']!r})")
    ts_event = datetime.fromtimestamp(publish_time, UTC)
    meta: dict[str, Any] = {
        "feed_id": normalize_id(str(entry.get("id", ""))),
        "subject": subject,
        "endpoint": "hermes_latest",
        "expo": expo,
        "price_raw": str(price["price"]),
        "conf_raw": str(price["conf"]),
        "publish_time": publish_time,
    }
    metadata = entry.get("metadata")
    if isinstance(metadata, dict):
        for key in ("slot", "proof_available_time", "prev_publish_time"):
            if metadata.get(key) is not None:
                meta[key] = metadata[key]
    # a Hermes update at a publish time never changes afterwards: the tick is final as published
    # (a provisional tick would never be fetched again, so it would never become usable)
    return SourceRecord(ts_event, {"price": float(value), "conf": float(conf)}, meta, True)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def decode_tv_history(body: Any, symbol: str) -> list[tuple[int, float, float, float, float, float]]:
    """A shim history body -> ``(t, o, h, l, c, v)`` ascending, unique ``t``; ``no_data`` -> ``[]``."""
    if not isinstance(body, dict):
        raise FeedUnavailable(f"{BENCHMARKS}: expected a JSON object, got {type(body).__name__}")
    status = body.get("s")
    if status == "no_data":
        return []
    if status == "error":
        errmsg = str(body.get("errmsg") or "")
        if "symbol" in errmsg.lower():
            raise FeedPermanentError(
                f"{BENCHMARKS} refuses {symbol}: {errmsg!r}; Pyth symbols are Crypto.<SUBJECT>/USD, check FEED_SUBJECTS"
            )
        raise FeedUnavailable(f"{BENCHMARKS} error for {symbol}: {errmsg!r}")
    if status != "ok":
        raise FeedUnavailable(f"{BENCHMARKS}: unexpected status s={status!r} for {symbol}")
    columns = {}
    for key in ("t", "o", "h", "l", "c"):
        column = body.get(key)
        if not isinstance(column, list):
            raise FeedUnavailable(f"{BENCHMARKS}: the {symbol} bars lack the '{key}' array")
        columns[key] = column
    volume = body.get("v")
    n = len(columns["t"])
    if any(len(column) != n for column in columns.values()) or (isinstance(volume, list) and len(volume) != n):
        raise FeedUnavailable(f"{BENCHMARKS}: the {symbol} bar arrays differ in length")
    bars: dict[int, tuple[int, float, float, float, float, float]] = {}
    for i in range(n):
        t = columns["t"][i]
        prices = [_number(columns[k][i]) for k in ("o", "h", "l", "c")]
        if isinstance(t, bool) or not isinstance(t, int) or any(p is None for p in prices):
            raise FeedUnavailable(
                f"{BENCHMARKS}: bar {i} of {symbol} is malformed (t={t!r}, ohlc={[columns[k][i] for k in 'ohlc']})"
            )
        o, h, low, c = (float(p) for p in prices if p is not None)
        if min(o, h, low, c) <= 0:
            raise FeedUnavailable(f"{BENCHMARKS}: bar t={t} of {symbol} has a non-positive price")
        v = _number(volume[i]) if isinstance(volume, list) else None
        bars[t] = (t, o, h, low, c, v or 0.0)  # type: ignore[assignment]
    return [bars[t] for t in sorted(bars)]


def _retry_after(value: str | None) -> float:
    return retry_after_seconds(value, RATE_LIMIT_PENALTY_SECONDS)


def _resolution_seconds(resolution: str) -> int:
    return 86_400 if resolution == "1D" else int(resolution) * 60


def _ceil(epoch: float, step: int) -> int:
    return int(math.ceil(epoch / step) * step)


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: building one (loading the CA bundle) costs ~40 ms."""
    return httpx.create_ssl_context()


# -- the source -------------------------------------------------------------------------------------


class PythSource:
    """Pyth over HTTP: see the module docstring for endpoints, finality and paging."""

    name = "pyth"
    page_limit = PAGE_BARS
    live = True

    def history_end(self, subject: str) -> datetime | None:
        return None

    def __init__(
        self,
        feed_ids: Mapping[str, str],
        hermes_url: str = "https://hermes.pyth.network",
        benchmarks_url: str = "https://benchmarks.pyth.network",
        api_key: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock | None = None,
    ) -> None:
        self.feed_ids = {subject.strip().upper(): normalize_id(i) for subject, i in feed_ids.items()}
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.sleep = sleep
        self.clock = clock or SystemClock()
        headers = {"Accept": "application/json", "User-Agent": "coordinator-pyth/1"}
        if api_key and api_key.strip():
            headers["Authorization"] = f"Bearer {api_key.strip()}"
        tls = _tls_context()
        self._hermes = httpx.Client(base_url=hermes_url, headers=headers, timeout=timeout_seconds, verify=tls)
        self._benchmarks = httpx.Client(base_url=benchmarks_url, headers=headers, timeout=timeout_seconds, verify=tls)

    @classmethod
    def from_settings(
        cls, settings: Any, *, sleep: Callable[[float], None] | None = None, clock: Clock | None = None
    ) -> PythSource:
        return cls(
            settings.feed_ids,
            hermes_url=settings.pyth_hermes_url,
            benchmarks_url=settings.pyth_benchmarks_url,
            api_key=settings.pyth_api_key,
            timeout_seconds=settings.feed_http_timeout_seconds,
            max_retries=settings.feed_max_retries,
            sleep=sleep or time.sleep,
            clock=clock,
        )

    def close(self) -> None:
        self._hermes.close()
        self._benchmarks.close()

    def __enter__(self) -> PythSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fetch --------------------------------------------------------------------------------------
    def fetch(self, scope: FeedScope, start: datetime, end: datetime, limit: int | None = None) -> list[SourceRecord]:
        start, end = ensure_utc(start, "start"), ensure_utc(end, "end")
        feed_id = self.feed_id(scope.subject)
        if scope.granularity not in GRANULARITY_SECONDS:
            raise FeedPermanentError(
                f"FEED_GRANULARITY: unknown granularity {scope.granularity!r}; "
                f"use one of {', '.join(GRANULARITY_SECONDS)}"
            )
        if scope.kind not in ("tick", "candle"):
            raise FeedPermanentError(f"FEED_KIND: the pyth source serves 'tick' and 'candle', not {scope.kind!r}")
        if end < start or (limit is not None and limit <= 0):
            return []
        limit = min(limit or PAGE_BARS, PAGE_BARS)
        now = self.clock.now()
        if scope.kind == "candle":
            resolution = RESOLUTIONS.get(scope.granularity)
            if resolution is None:
                raise FeedPermanentError(
                    f"FEED_GRANULARITY: Pyth candles come from the Benchmarks TradingView shim, which has "
                    f"{', '.join(RESOLUTIONS)}; {scope.granularity!r} is not one of them (use kind 'tick' or another source)"
                )
            return self._candles(scope.subject, feed_id, resolution, start, end, limit, now)
        live = (now - end).total_seconds() <= LIVE_SLACK_SECONDS and (now - start).total_seconds() <= LIVE_SPAN_SECONDS
        if live:
            return self._latest_tick(scope.subject, feed_id, start, end, now)
        return self._history_ticks(scope.subject, feed_id, scope.granularity, start, end, limit, now)

    def feed_id(self, subject: str) -> str:
        feed_id = self.feed_ids.get(subject.strip().upper())
        if not feed_id:
            raise FeedPermanentError(
                f"PYTH_FEED_IDS has no feed id for subject {subject!r} "
                f"(configured: {', '.join(sorted(self.feed_ids)) or 'none'}); add {subject}=0x<64 hex>"
            )
        return feed_id

    # -- kinds --------------------------------------------------------------------------------------
    def _latest_tick(
        self, subject: str, feed_id: str, start: datetime, end: datetime, now: datetime
    ) -> list[SourceRecord]:
        def call() -> SourceRecord:
            body = self._get(
                self._hermes, HERMES, LATEST_PATH, [("ids[]", feed_id), ("parsed", "true")], feed_id, subject
            )
            return parsed_to_record(find_parsed(body, feed_id), subject, now)

        record = self._backoff().call(call, f"{HERMES} latest {subject}")
        age = (now - record.ts_event).total_seconds()
        if age > STALE_SECONDS:
            log.warning(
                "%s %s: the latest update is %.0f s old (publish_time %s): stale feed?",
                HERMES,
                subject,
                age,
                record.ts_event.isoformat(),
            )
        if record.ts_event > end:
            log.warning(
                "%s %s: publish_time %s is after the window end %s: is the local clock %.1f s behind?",
                HERMES,
                subject,
                record.ts_event.isoformat(),
                end.isoformat(),
                -age,
            )
            return []
        return [record] if record.ts_event >= start else []

    def _history_ticks(
        self, subject: str, feed_id: str, granularity: str, start: datetime, end: datetime, limit: int, now: datetime
    ) -> list[SourceRecord]:
        step = GRANULARITY_SECONDS[granularity]
        resolution = RESOLUTIONS.get(granularity, "1")
        res = _resolution_seconds(resolution)
        grid = max(step, 60)  # sub-minute granularities: one tick a minute (the shim's finest)
        # a tick at close time c comes from the bar opened at c - res; first/last wanted closes
        first_close = _ceil(start.timestamp(), grid)
        # never past now: the bar still open has no close yet, whatever the window says
        last_close = min(int(min(end, now).timestamp()) // grid * grid, first_close + (limit - 1) * grid)
        if last_close < first_close:
            return []
        bars = self._bars(subject, resolution, first_close - res, last_close - res)
        records = []
        for t, _o, _h, _l, c, _v in bars:
            close_time = t + res
            if close_time % grid or not first_close <= close_time <= last_close:
                continue
            ts = datetime.fromtimestamp(close_time, UTC)
            if not start <= ts <= end:
                continue
            final = close_time + FINALITY_LAG_SECONDS <= now.timestamp()
            meta = {
                "feed_id": feed_id,
                "symbol": benchmarks_symbol(subject),
                "endpoint": "benchmarks_tv_close",
                "resolution": resolution,
                "bar_open": t,
            }
            records.append(SourceRecord(ts, {"price": c}, meta, final))
        return records[:limit]

    def _candles(
        self, subject: str, feed_id: str, resolution: str, start: datetime, end: datetime, limit: int, now: datetime
    ) -> list[SourceRecord]:
        step = _resolution_seconds(resolution)
        first = _ceil(start.timestamp(), step)
        last = min(int(end.timestamp()) // step * step, first + (limit - 1) * step)
        if last < first:
            return []
        records = []
        for t, o, h, low, c, v in self._bars(subject, resolution, first, last):
            ts = datetime.fromtimestamp(t, UTC)
            if not first <= t <= last or not start <= ts <= end:
                continue
            final = t + step + FINALITY_LAG_SECONDS <= now.timestamp()
            meta = {
                "feed_id": feed_id,
                "symbol": benchmarks_symbol(subject),
                "endpoint": "benchmarks_tv_history",
                "resolution": resolution,
            }
            records.append(SourceRecord(ts, {"open": o, "high": h, "low": low, "close": c, "volume": v}, meta, final))
        return records[:limit]

    def _bars(
        self, subject: str, resolution: str, first_open: int, last_open: int
    ) -> list[tuple[int, float, float, float, float, float]]:
        """Bars with open time in ``[first_open, last_open]``: one shim request (with retries).

        ``to`` is sent as ``last_open + 1`` so the last bar is included whether the server reads
        ``to`` as inclusive or (as the UDF spec says) exclusive; extra bars are filtered out.
        """
        symbol = benchmarks_symbol(subject)
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("symbol", symbol),
            ("resolution", resolution),
            ("from", str(first_open)),
            ("to", str(last_open + 1)),
        ]

        def call() -> list[tuple[int, float, float, float, float, float]]:
            return decode_tv_history(
                self._get(self._benchmarks, BENCHMARKS, HISTORY_PATH, params, None, subject), symbol
            )

        return self._backoff().call(call, f"{BENCHMARKS} history {symbol} @{resolution}")

    # -- transport ----------------------------------------------------------------------------------
    def _backoff(self) -> Backoff:
        return Backoff(attempts=self.max_retries, sleep=self.sleep)

    def _get(
        self,
        client: httpx.Client,
        host: str,
        path: str,
        params: list[tuple[str, str | int | float | bool | None]],
        feed_id: str | None,
        subject: str,
    ) -> Any:
        """GET and decode JSON, mapping every failure to the project's feed errors."""
        try:
            response = client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise FeedUnavailable(
                f"{host} {path}: no answer within {self.timeout_seconds} s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise FeedUnavailable(f"{host} {path}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError as exc:
                raise FeedUnavailable(f"{host} {path}: the body is not JSON ({response.text[:120]!r})") from exc
        text = response.text.strip()[:300]
        if status == 429:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise RateLimited(f"{host} {path}: rate limited (429), retry in {wait:.0f} s", retry_after=wait)
        if status in (401, 403):
            raise FeedPermanentError(f"{host} answered {status} ({text!r}): {KEY_HINT}")
        if status == 404 and host == HERMES and feed_id is not None:
            raise FeedPermanentError(
                f"{HERMES} does not know feed id 0x{feed_id} for {subject} ({text!r}); "
                "fix PYTH_FEED_IDS (see https://pyth.network/developers/price-feed-ids)"
            )
        if status == 400 and host == HERMES:
            raise FeedPermanentError(
                f"{HERMES} refused feed id 0x{feed_id} for {subject}: HTTP 400 ({text!r}); check PYTH_FEED_IDS"
            )
        if status >= 500 or status == 408:
            raise FeedUnavailable(f"{host} {path}: HTTP {status} ({text!r})")
        raise FeedPermanentError(f"{host} {path} refused the request for {subject}: HTTP {status} ({text!r})")
