"""Binance spot REST (``/api/v3/klines`` and ``/api/v3/aggTrades``) through python-binance.

Transport: ``binance.client.Client`` (python-binance 1.0.37), built with ``ping=False`` (its
constructor would otherwise call ``/api/v3/ping`` on api.binance.com) and pointed at
``BINANCE_API_URL`` by overriding the instance's ``API_URL`` with ``{BINANCE_API_URL}/api``: the
client formats ``API_URL`` with ``tld``/``base_endpoint`` in ``__init__`` (which can only choose a
``*.binance.*`` host) and reads it again at every call (``_create_api_uri`` + ``/v3/<path>``).
The request timeout is ``FEED_HTTP_TIMEOUT_SECONDS`` (``requests_params={"timeout": ...}``).

Subjects map to USDT pairs: ``BTC -> BTCUSDT``, ``ETH -> ETHUSDT``, otherwise ``<SUBJECT>USDT``;
records keep the native symbol in ``meta["symbol"]``.

* ``candle``: klines at ``interval = granularity`` (Binance has 1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h,
  4h, 6h, 8h, 12h, 1d; others raise ``FeedPermanentError`` naming FEED_GRANULARITY).
  ``ts_event`` = open time. **Finality**: a candle is final when its close time
  (open + interval - 1 ms) is before the server's clock, read from the ``Date`` header of the
  same response (Binance's clock, not ours; it is floored to the second, so the test is
  conservative and exact for second-aligned candles). Without a ``Date`` header the source asks
  ``/api/v3/time``. The candle still open is returned with ``final=False``; fetch it again later.
* ``tick``: aggTrades; ``ts_event`` = the exchange trade time ``T``. The storage key has ms
  resolution, so of several trades in the same millisecond only the **last** (highest aggregate
  id) is kept; ``meta`` says how many were collapsed and their total quantity. When the upstream
  page is full, its last millisecond may continue on the next page, so it is dropped (unless it
  is the only one): resume at ``last ts_event + 1 ms``. A page of ticks is therefore often
  shorter than ``limit`` even when more trades follow; only an empty page means "no more".
  The granularity of a tick scope is a label; it does not change the query.

One ``fetch`` is one upstream page (at most ``limit``, at most 1000); the caller pages.

Errors: 429/418 -> ``RateLimited`` (``retry_after`` from ``Retry-After``, 60 s if absent; calls on this
source are refused locally until then, so a ban is not extended); 451, 401/403, 400 (-1121 unknown
symbol, -1120 bad interval, ...) and 404 -> ``FeedPermanentError``; 5xx, timeouts, connection
errors and bodies that are not Binance JSON -> ``FeedUnavailable``. Every call goes through
``Backoff(attempts=FEED_MAX_RETRIES)``. Weight: after each answer ``X-MBX-USED-WEIGHT-1M`` is read;
above 50 % of 6000 the source sleeps until the next minute (server clock) before returning.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from coordinator_core.clock import ensure_utc
from coordinator_core.config import GRANULARITY_SECONDS
from coordinator_core.errors import (
    ConfigurationError,
    FeedPermanentError,
    FeedUnavailable,
    RateLimited,
)
from coordinator_core.feeds.base import FeedScope, SourceRecord
from coordinator_core.feeds.retry import Backoff, retry_after_seconds

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.binance.com"
DATA_API_URL = "https://data-api.binance.vision"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
SYMBOLS = {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}
MAX_LIMIT = 1000
WEIGHT_LIMIT_1M = 6000
DEFAULT_RETRY_AFTER = 60.0  # a 429/418 without Retry-After (Binance always sends it)


def symbol_for(subject: str) -> str:
    subject = subject.strip().upper()
    return SYMBOLS.get(subject, f"{subject}USDT")


def _ms_floor(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def _ms_ceil(value: datetime) -> int:
    return -((EPOCH - value) // timedelta(milliseconds=1))


def _at_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _import_client() -> tuple[Any, Any, Any, Any]:
    """python-binance takes ~0.7 s to import and warns about websockets' legacy API: import lazily."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import requests
        from binance.client import Client
        from binance.exceptions import BinanceAPIException, BinanceRequestException
    return Client, BinanceAPIException, BinanceRequestException, requests


class BinanceSource:
    """Binance spot market data (public endpoints, no API key)."""

    name = "binance"
    page_limit = MAX_LIMIT
    live = True

    def history_end(self, subject: str) -> datetime | None:
        return None

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        timeout_seconds: float = 10.0,
        max_retries: int = 5,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        weight_budget: int = WEIGHT_LIMIT_1M // 2,
        backoff_base_seconds: float = 0.5,
    ) -> None:
        """``sleep``/``clock`` (epoch seconds) are injectable so tests record waits instead of sleeping."""
        base = base_url.strip().rstrip("/")
        for suffix in ("/api/v3", "/api"):
            base = base.removesuffix(suffix)
        if not base.startswith(("http://", "https://")):
            raise ConfigurationError(f"BINANCE_API_URL: {base_url!r} is not an http(s) URL; e.g. {DEFAULT_API_URL}")
        self.base_url = base
        self.timeout_seconds = timeout_seconds
        self.weight_budget = weight_budget
        self._sleep = sleep
        self._clock = clock
        self.backoff = Backoff(attempts=max_retries, base_seconds=backoff_base_seconds, sleep=sleep)
        client_cls, self._api_error, self._request_error, requests = _import_client()
        self._timeout_error, self._transport_error = requests.Timeout, requests.RequestException
        # ping=False: no network in the constructor. NB python-binance's BaseClient.__init__ also calls
        # asyncio.get_event_loop(), which creates (and sets) an event loop in a thread that has none.
        self._client = client_cls(requests_params={"timeout": timeout_seconds}, ping=False)
        self._client.API_URL = f"{base}/api"  # -> {base}/api/v3/<endpoint>; testnet/demo stay off
        self._lock = threading.RLock()
        self._blocked_until = 0.0  # clock() time before which Binance asked us not to call
        self._block_reason = ""
        self.used_weight: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> BinanceSource:
        return cls(settings.binance_api_url, settings.feed_http_timeout_seconds, settings.feed_max_retries)

    def close(self) -> None:
        """Close the HTTP session (connections are pooled between calls)."""
        self._client.session.close()

    # FeedSource ---------------------------------------------------------------------------------
    def fetch(self, scope: FeedScope, start: datetime, end: datetime, limit: int | None = None) -> list[SourceRecord]:
        start, end = ensure_utc(start, "start"), ensure_utc(end, "end")
        count = min(self.page_limit if limit is None else limit, self.page_limit)
        start_ms, end_ms = _ms_ceil(start), _ms_floor(end)
        if scope.kind not in ("candle", "tick"):
            raise FeedPermanentError(f"FEED_KIND: Binance serves 'candle' or 'tick', not {scope.kind!r}")
        interval_ms = self._interval_ms(scope) if scope.kind == "candle" else 0
        if count <= 0 or start_ms > end_ms:
            return []
        symbol = symbol_for(scope.subject)
        params = {"symbol": symbol, "startTime": start_ms, "endTime": end_ms, "limit": count}
        context = {"subject": scope.subject, "symbol": symbol}
        if scope.kind == "candle":
            params["interval"] = scope.granularity
            rows, headers = self._call(
                "klines",
                self._client.get_klines,
                params,
                context,
                lambda body: _decode_klines(body, symbol, start_ms, end_ms, count),
            )
            if not rows:
                return []
            server_now = _date_ms(headers)  # not stored in meta: a re-fetch must not look like a change
            if server_now is None:
                log.warning("Binance sent no readable Date header; asking /api/v3/time for candle finality")
                server_now = self.server_time_ms()
            return [
                SourceRecord(
                    _at_ms(open_ms),
                    values,
                    {"symbol": symbol, "interval": scope.granularity, "close_time": open_ms + interval_ms - 1, **meta},
                    final=open_ms + interval_ms - 1 < server_now,
                )
                for open_ms, values, meta in rows
            ]
        records, _ = self._call(
            "aggTrades",
            self._client.get_aggregate_trades,
            params,
            context,
            lambda body: _decode_agg_trades(body, symbol, start_ms, end_ms, count),
        )
        return records

    def server_time_ms(self) -> int:
        """Binance's clock (``/api/v3/time``, weight 1)."""
        server_time, _ = self._call("time", self._client.get_server_time, {}, {}, _decode_server_time)
        return server_time

    # decoding -------------------------------------------------------------------------------------
    def _interval_ms(self, scope: FeedScope) -> int:
        interval = INTERVAL_MS.get(scope.granularity)
        if interval is None:
            known = [g for g in GRANULARITY_SECONDS if g in INTERVAL_MS]
            raise FeedPermanentError(
                f"FEED_GRANULARITY: Binance has no {scope.granularity!r} klines; use one of {', '.join(known)}"
            )
        return interval

    # transport ------------------------------------------------------------------------------------
    def _call(
        self,
        what: str,
        method: Callable[..., Any],
        params: dict[str, Any],
        context: dict[str, str],
        decode: Callable[[Any], Any],
    ) -> tuple[Any, Any]:
        """One upstream GET, decoded, retried by the backoff; returns (decoded, headers).

        Every failure becomes a project error; a malformed body is a ``FeedUnavailable`` (retried)."""

        def attempt() -> Any:
            with self._lock:
                wait = self._blocked_until - self._clock()
                if wait > 0:
                    raise RateLimited(
                        f"{self._block_reason}; {wait:.0f} s left, so {what} is not called", retry_after=wait
                    )
                try:
                    body = method(**params)
                    response = self._client.response
                except self._api_error as exc:
                    raise self._api_failure(what, exc, context) from exc
                except self._request_error as exc:
                    raise FeedUnavailable(
                        f"Binance {what}: the answer is not JSON ({exc.message[:200]}); "
                        f"check that BINANCE_API_URL={self.base_url} is Binance's REST API"
                    ) from exc
                except self._timeout_error as exc:
                    raise FeedUnavailable(
                        f"Binance {what}: no answer from {self.base_url} within {self.timeout_seconds} s "
                        "(FEED_HTTP_TIMEOUT_SECONDS)"
                    ) from exc
                except self._transport_error as exc:
                    raise FeedUnavailable(
                        f"Binance {what}: cannot reach {self.base_url} ({type(exc).__name__}: {exc}); "
                        "check the network or BINANCE_API_URL"
                    ) from exc
                headers = response.headers if response is not None else {}
                decoded = decode(body)
                self._mind_weight(headers)  # sleeps under the lock: the whole source pauses
                return decoded, headers

        return self.backoff.call(attempt, what=f"binance {what} {context.get('symbol', '')}".rstrip())

    def _api_failure(self, what: str, exc: Any, context: dict[str, str]) -> Exception:
        status, code, msg = exc.status_code, exc.code, str(exc.message)[:200]
        headers = getattr(exc.response, "headers", None) or {}
        said = f"HTTP {status}, code {code}: {msg}"
        if status in (429, 418):
            retry_after = _retry_after(headers.get("Retry-After"))
            if status == 418:
                log.error("Binance banned this IP for %.0f s (HTTP 418): calls stop until then", retry_after)
                error = RateLimited(
                    f"Binance banned this IP for {retry_after:.0f} s after ignored 429s ({said}); "
                    "no call is made until Retry-After; check that nothing else on this IP polls Binance",
                    retry_after=retry_after,
                )
            else:
                error = RateLimited(
                    f"Binance rate limit ({said}); waiting Retry-After {retry_after:.0f} s; poll less "
                    "often or ingest fewer subjects (6000 weight/min per IP)",
                    retry_after=retry_after,
                )
            until = self._clock() + retry_after
            if until > self._blocked_until:
                self._blocked_until, self._block_reason = until, str(error)
            return error
        if status == 451:
            return FeedPermanentError(
                f"Binance refuses this location ({said}): restricted location: set "
                f"BINANCE_API_URL={DATA_API_URL} or run elsewhere"
            )
        if status == 400 and code == -1121:
            return FeedPermanentError(
                f"Binance does not list symbol {context.get('symbol')!r} for subject "
                f"{context.get('subject')!r} ({said}); fix FEED_SUBJECTS (a subject X is traded "
                "as XUSDT; BTC->BTCUSDT, ETH->ETHUSDT)"
            )
        if status == 400 and code == -1120:
            return FeedPermanentError(f"Binance refused the interval ({said}); fix FEED_GRANULARITY")
        if status in (401, 403):
            return FeedPermanentError(
                f"Binance refused access to {what} ({said}); market data needs no API key: check "
                f"that BINANCE_API_URL={self.base_url} is Binance spot ({DEFAULT_API_URL} or "
                f"{DATA_API_URL}) and that no proxy or firewall blocks it"
            )
        if status >= 500 or status == 408:
            return FeedUnavailable(f"Binance {what} failed on its side ({said}); the request is retried")
        return FeedPermanentError(
            f"Binance refused {what} ({said}); check BINANCE_API_URL={self.base_url} and the feed settings"
        )

    def _mind_weight(self, headers: Any) -> None:
        """Pause until the next minute when the IP's used weight passes the budget (50 % of 6000)."""
        try:
            used = int(headers.get("X-MBX-USED-WEIGHT-1M"))
        except (TypeError, ValueError):
            return
        self.used_weight = used
        if used <= self.weight_budget:
            return
        server_ms = _date_ms(headers)
        now_s = server_ms / 1000 if server_ms is not None else self._clock()
        wait = 60 - now_s % 60
        log.warning(
            "Binance used weight %d/min is above the budget %d of %d: pausing %.0f s until the next minute",
            used,
            self.weight_budget,
            WEIGHT_LIMIT_1M,
            wait,
        )
        self._sleep(wait)


def _retry_after(value: str | None) -> float:
    return retry_after_seconds(value, DEFAULT_RETRY_AFTER)


def _date_ms(headers: Any) -> int | None:
    """The ``Date`` header in epoch ms (second resolution), or None."""
    value = headers.get("Date") if headers is not None else None
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1000
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _decode_server_time(body: Any) -> int:
    if not isinstance(body, dict) or not isinstance(body.get("serverTime"), int):
        raise FeedUnavailable(f'Binance /api/v3/time answered {str(body)[:200]!r}, not {{"serverTime": <ms>}}')
    return body["serverTime"]


def _decode_klines(
    body: Any, symbol: str, start_ms: int, end_ms: int, count: int
) -> list[tuple[int, dict[str, float], dict[str, Any]]]:
    """Kline rows -> (open_ms, values, meta), ascending, unique, inside [start_ms, end_ms], at most ``count``."""
    if not isinstance(body, list):
        raise FeedUnavailable(f"Binance klines for {symbol}: expected a JSON list of rows, got {str(body)[:200]!r}")
    decoded = {}
    try:
        for row in body:
            if not isinstance(row, list) or len(row) < 11 or not isinstance(row[0], int):
                raise ValueError(f"row {str(row)[:200]!r} is not a 12-field kline")
            if not start_ms <= row[0] <= end_ms:
                continue
            values = {
                "open": float(row[1]),
                "high": float(row[2]),
                "low": float(row[3]),
                "close": float(row[4]),
                "volume": float(row[5]),
            }
            if not all(math.isfinite(v) for v in values.values()):
                raise ValueError(f"row {str(row)[:200]!r} holds a non-finite number")
            meta = {
                "quote_volume": float(row[7]),
                "trades": int(row[8]),
                "taker_buy_base": float(row[9]),
                "taker_buy_quote": float(row[10]),
            }
            decoded[row[0]] = (row[0], values, meta)
    except (TypeError, ValueError) as exc:
        raise FeedUnavailable(f"Binance klines for {symbol}: malformed answer ({exc})") from exc
    return [decoded[t] for t in sorted(decoded)][:count]


def _decode_agg_trades(body: Any, symbol: str, start_ms: int, end_ms: int, count: int) -> list[SourceRecord]:
    """aggTrades -> one record per distinct millisecond (its last trade); see the module docstring."""
    if not isinstance(body, list):
        raise FeedUnavailable(
            f"Binance aggTrades for {symbol}: expected a JSON list of trades, got {str(body)[:200]!r}"
        )
    trades = []
    try:
        for trade in body:
            if (
                not isinstance(trade, dict)
                or not isinstance(trade.get("T"), int)
                or not isinstance(trade.get("a"), int)
            ):
                raise ValueError(f"trade {str(trade)[:200]!r} lacks the aggregate id 'a' or the time 'T'")
            price, quantity = float(trade["p"]), float(trade["q"])
            if not (math.isfinite(price) and math.isfinite(quantity)):
                raise ValueError(f"trade {str(trade)[:200]!r} holds a non-finite number")
            trades.append((trade["a"], trade["T"], price, quantity, trade))
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedUnavailable(f"Binance aggTrades for {symbol}: malformed answer ({exc})") from exc
    by_ms: dict[int, list[tuple[int, int, float, float, dict[str, Any]]]] = {}
    for item in sorted(trades, key=lambda t: t[0]):  # aggregate ids grow with time
        if start_ms <= item[1] <= end_ms:
            by_ms.setdefault(item[1], []).append(item)
    times = sorted(by_ms)
    if len(body) >= count and len(times) > 1:
        times.pop()  # a full page: its last millisecond may go on in the next page; fetch it whole then
    records = []
    for ms in times:
        group = by_ms[ms]
        agg_id, _, price, quantity, raw = group[-1]
        meta = {
            "symbol": symbol,
            "agg_id": agg_id,
            "first_trade_id": raw.get("f"),
            "last_trade_id": raw.get("l"),
            "buyer_maker": raw.get("m"),
            "trades_in_ms": len(group),
            "quantity_in_ms": sum(item[3] for item in group),
        }
        records.append(SourceRecord(_at_ms(ms), {"price": price, "quantity": quantity}, meta, final=True))
    return records[:count]
