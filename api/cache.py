"""In-process caches of the leaderboard, keyed by the row's ``(id, version)``.

A leaderboard row holds every ranked entry (one JSON document that grows with the number of
models); reading and parsing it, then validating and serialising a page, is the whole cost of
``/reports/leaderboard``. The route first reads the row's head (id, created_at and a version that
changes with every write of the row: Postgres ``xmin``), a one-row index lookup, and reuses

* that head itself for ``head_ttl`` (1 s): a burst of requests reads the database once a second;
* the parsed entries of that version (``board``/``put_board``), and
* the serialised JSON of a page of that version (``page``/``put_page``), for at most
  ``page_ttl`` seconds, because a page also shows each model's current state (RUNNING, STOPPED).

Without a version (SQLite) nothing is cached. Both caches are small LRUs.

``TtlCache`` also keeps the serialised JSON of a checkpoint keyed by ``(id, version)``, and
window totals (``window_totals`` per window at an as-of time) keyed by that
as-of time and the latest leaderboard's ``(id, version)``: every scoring run that changes a
snapshot rebuilds the leaderboard, so a new version means new totals; entries also expire after
``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class LeaderboardCache:
    def __init__(self, boards: int = 4, pages: int = 256, page_ttl: float = 5.0, head_ttl: float = 1.0) -> None:
        self._boards = _Lru(boards)
        self._pages = _Lru(pages)
        self.page_ttl = page_ttl
        self.head_ttl = head_ttl
        self._head: tuple[dict[str, Any], float] | None = None

    def latest_head(self) -> dict[str, Any] | None:
        """The latest leaderboard's head if it was read less than ``head_ttl`` seconds ago."""
        head = self._head
        if head is None or time.monotonic() - head[1] > self.head_ttl:
            return None
        return head[0]

    def put_latest_head(self, head: dict[str, Any]) -> dict[str, Any]:
        if head.get("version") is not None:
            self._head = (head, time.monotonic())
        return head

    def board(self, leaderboard_id: str, version: str | None) -> dict[str, Any] | None:
        return None if version is None else self._boards.get((leaderboard_id, version))

    def put_board(self, board: dict[str, Any]) -> dict[str, Any]:
        """Store a leaderboard row (``entries`` sorted by rank) and return it."""
        if board.get("version") is not None:
            self._boards.put((board["id"], board["version"]), board)
        return board

    def page(self, key: tuple[Any, ...]) -> tuple[bytes, Any] | None:
        """``(body, next_key)`` of a page served less than ``page_ttl`` seconds ago."""
        if key[1] is None:
            return None
        hit = self._pages.get(key)
        if hit is None or time.monotonic() - hit[2] > self.page_ttl:
            return None
        return hit[0], hit[1]

    def put_page(self, key: tuple[Any, ...], body: bytes, next_key: Any) -> None:
        if key[1] is not None:
            self._pages.put(key, (body, next_key, time.monotonic()))


class TtlCache:
    def __init__(self, size: int = 64, ttl: float = 60.0) -> None:
        self._items = _Lru(size)
        self.ttl = ttl

    def get(self, key: Hashable) -> Any:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[1] > self.ttl:
            return None
        return hit[0]

    def put(self, key: Hashable, value: Any) -> Any:
        self._items.put(key, (value, time.monotonic()))
        return value
