"""The public leaderboard page (``/board``), ``/docs`` and ``/redoc`` in a real headless browser.

A real uvicorn serves ``create_app`` on 127.0.0.1 (a free port) over the API tests' backtest data
(SQLite); Playwright drives Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``;
Playwright's own browser download does not work here). Every request to another host is aborted
and recorded: the pages must make none. The board's table, chart and checkpoint must show what
the JSON routes say, and the screenshot must have the chart drawn (coloured pixels in its box).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.integration.test_api_support import NOW, dataset

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("BOARD_SCREENSHOT_DIR", "")) if os.environ.get("BOARD_SCREENSHOT_DIR") else None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a real uvicorn over the backtest data (no API keys)."""
    from api.app import create_app
    from coordinator_core.config import load_settings

    data = dataset("sqlite")
    settings = load_settings(
        database_url=data.url,
        models_dir=data.models_dir,
        read_database_url=None,
        api_public_keys=None,
        api_read_keys=None,
        api_admin_keys=None,
        api_cors_origins="",
        crunch_contract=None,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, clock=lambda: NOW), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok", "database": "ok"}
    yield base
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """A page whose requests to any other origin are aborted and recorded in ``page.outside``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    tab = context.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(server + "/") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    tab.route("**/*", guard)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    console: list[str] = []
    tab.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    tab.outside = outside
    tab.errors = errors
    tab.console = console
    yield tab
    context.close()


# -- PNG pixels (Chromium writes 8-bit RGB or RGBA, not interlaced) ---------------------------------
def png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """``(width, height, channels, rows)`` of an 8-bit non-interlaced RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def colours_in(shot: bytes, box: dict[str, float]) -> tuple[int, int, set[tuple[int, int, int]]]:
    """In ``box`` of the screenshot: pixels that are not near-white, strongly coloured ones, and
    the set of strong colours (quantised)."""
    width, height, channels, rows = png_pixels(shot)
    x0, y0 = max(int(box["x"]), 0), max(int(box["y"]), 0)
    x1, y1 = min(int(box["x"] + box["width"]), width), min(int(box["y"] + box["height"]), height)
    inked = strong = 0
    hues: set[tuple[int, int, int]] = set()
    for y in range(y0, y1):
        row = rows[y]
        for x in range(x0, x1):
            r, g, b = row[x * channels : x * channels + 3]
            if min(r, g, b) < 235:
                inked += 1
            if max(r, g, b) - min(r, g, b) > 80:
                strong += 1
                hues.add((r // 64, g // 64, b // 64))
    return inked, strong, hues


# -- the board ---------------------------------------------------------------------------------------
def test_board_shows_what_the_api_says(page: Any, server: str) -> None:
    api = httpx.Client(base_url=server)
    info = api.get("/info").json()
    board = api.get("/reports/leaderboard", params={"limit": 1000}).json()
    top = [e["model_id"] for e in board[:10]]
    history = api.get("/reports/leaderboard/history", params={"points": 300, "model_id": top}).json()
    latest = api.get("/reports/checkpoints/latest").json()
    cli = api.get(f"/reports/checkpoints/{latest['id']}/emission/cli-format").json()
    assert len(board) == 5 and history["models"] and cli["crunchEmission"]

    page.goto(f"{server}/", wait_until="load")  # / redirects to /board
    assert page.url == f"{server}/board"
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=30_000)
    page.wait_for_selector("#leaderboard tbody tr")
    page.wait_for_selector("#chart polyline.series")
    assert page.title() == f"{info['crunch_id']} leaderboard"

    # the table: one row per entry, in rank order, with the entry's names, scores and counts
    rows = page.eval_on_selector_all(
        "#leaderboard tbody tr",
        """rows => rows.map(r => ({
            model: r.dataset.model,
            rank: r.querySelector('.rank').textContent,
            name: r.querySelector('.model').textContent,
            participant: r.querySelector('.participant').textContent,
            scores: Object.fromEntries([...r.querySelectorAll('.score')].map(c => [c.dataset.window,
                {value: c.dataset.value, text: c.textContent}])),
            counts: Object.fromEntries([...r.querySelectorAll('.count')].map(c => [c.dataset.count, c.textContent])),
        }))""",
    )
    assert [r["model"] for r in rows] == [e["model_id"] for e in board]
    for row, entry in zip(rows, board, strict=True):
        assert row["rank"] == str(entry["rank"])
        assert row["name"] == entry["model_name"] and row["participant"] == entry["cruncher_name"]
        assert set(row["scores"]) == set(info["windows"])
        for window, cell in row["scores"].items():
            expected = entry[window]  # the default windows are named score_*: their own payload key
            assert float(cell["value"]) == expected, (entry["model_id"], window)
            assert float(cell["text"]) == pytest.approx(expected, rel=1e-5), (cell, expected)
        for count in ("prediction_count", "scored_count", "failed_count", "absent_count"):
            assert row["counts"][count] == str(entry[count])
    headers = page.eval_on_selector_all("#leaderboard thead th", "cells => cells.map(c => c.textContent)")
    assert headers[:3] == ["Rank", "Model", "Participant"] and "score_recent (24 h)" in headers

    # the chart: one line per model of the history, in rank order, with as many vertices as points
    lines = page.eval_on_selector_all(
        "#chart polyline.series", "ls => ls.map(l => [l.dataset.model, l.getAttribute('points').split(' ').length])"
    )
    by_model = {m["model_id"]: m for m in history["models"]}
    assert [model for model, _ in lines] == top
    for model, vertices in lines:
        assert vertices == len([p for p in by_model[model]["points"] if p["score"] is not None]) > 20
    legend = page.eval_on_selector_all("#legend li", "items => items.map(i => i.textContent)")
    assert legend == [e["model_name"] for e in board]

    # the checkpoint: per participant, the CLI percentages with the unit
    rewards = page.eval_on_selector_all(
        "#rewards tbody tr",
        """rows => rows.map(r => ({key: r.dataset.participant, models: r.querySelector('.models').textContent,
            value: r.querySelector('.percent').dataset.value, text: r.querySelector('.percent').textContent}))""",
    )
    assert {r["key"] for r in rewards} == set(cli["crunchEmission"])
    assert "Reward (%)" in page.inner_text("#rewards thead")
    for reward in rewards:
        expected = cli["crunchEmission"][reward["key"]]
        assert float(reward["value"]) == expected
        assert reward["text"] == f"{expected:.2f} %"
    assert sum(float(r["value"]) for r in rewards) == pytest.approx(100.0, abs=1e-6)
    alice = next(r for r in rewards if r["key"] == "alice")
    assert alice["models"] == "mean_reversion, momentum" and alice["text"] == "55.00 %"
    assert latest["id"] in page.inner_text("#checkpoint-note")

    # the screenshot: the chart is drawn (lines in several colours), the table has text
    shot = page.screenshot(full_page=True)
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "board.png").write_bytes(shot)
    chart_box = page.locator("#chart").bounding_box()
    table_box = page.locator("#leaderboard").bounding_box()
    assert chart_box["width"] > 600 and chart_box["height"] > 200, chart_box
    inked, strong, hues = colours_in(shot, chart_box)
    area = chart_box["width"] * chart_box["height"]
    assert strong > 2000 and len(hues) >= 4, (strong, hues)  # five coloured lines
    assert inked < area * 0.5, (inked, area)  # lines and labels on a white card, not a filled box
    table_inked, _, _ = colours_in(shot, table_box)
    assert table_inked > 1000, table_inked
    assert page.outside == [] and page.errors == []


def test_board_asks_for_a_key_when_the_api_needs_one(browser: Any, server: str) -> None:
    """With API_PUBLIC_KEYS set the JSON routes answer 401: the page says so and offers a key field."""
    from api.app import create_app
    from coordinator_core.config import load_settings

    data = dataset("sqlite")
    settings = load_settings(
        database_url=data.url,
        models_dir=data.models_dir,
        read_database_url=None,
        api_public_keys="board-key",
        api_read_keys=None,
        api_admin_keys=None,
        api_cors_origins="",
        crunch_contract=None,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    guarded = f"http://127.0.0.1:{sock.getsockname()[1]}"
    uv = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not uv.started:
            assert thread.is_alive()
            time.sleep(0.05)
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(f"{guarded}/board")
        tab.wait_for_selector("body[data-ready='error']", state="attached", timeout=20_000)
        assert "needs a key" in tab.inner_text("#status") and tab.is_visible("#key-input")
        tab.fill("#key-input", "board-key")
        tab.click("form#key button")
        tab.wait_for_selector("body[data-ready='1']", state="attached", timeout=20_000)
        assert tab.locator("#leaderboard tbody tr").count() == 5
        context.close()
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


# -- the API documentation, offline -----------------------------------------------------------------
def test_swagger_ui_renders_offline(page: Any, server: str) -> None:
    page.goto(f"{server}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "Coordinator report API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path[data-path='/reports/leaderboard/history']")
    assert page.locator(".opblock").count() >= 27
    assert page.outside == [] and page.errors == []


def test_redoc_renders_offline(page: Any, server: str) -> None:
    page.goto(f"{server}/redoc")
    page.wait_for_selector("h1:has-text('Coordinator report API')", timeout=30_000)
    page.get_by_text("/reports/leaderboard/history", exact=True).first.wait_for(state="attached", timeout=30_000)
    # ReDoc's footer names the Redocly logo on its CDN: the page's Content-Security-Policy stops it
    # in the browser, so nothing reaches the network (the logo hides itself when it cannot load)
    assert page.outside == [] and page.errors == []
    assert all("cdn.redoc.ly" in message for message in page.console if "Content Security Policy" in message)
