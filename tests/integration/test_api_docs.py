"""``/docs``, ``/redoc`` and ``/board`` work offline: their HTML references no outside host, and every
asset it references is served by the API itself (200, the right type, the vendored bytes). The
pages need no database, so one SQLite app serves them (also behind a ``root_path`` prefix)."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from coordinator_core.config import load_settings
from coordinator_core.db.migrate import upgrade

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
PAGES = ("/docs", "/redoc", "/board")
KEY = {"X-API-Key": "public-key"}


class References(HTMLParser):
    """Every URL an HTML page makes the browser load: src/href attributes and spec-url."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    # the Swagger UI initialiser names the schema in JavaScript: url: '/openapi.json'; the board
    # reads JSON routes with relative URLs: getJson("info"), getAll("reports/leaderboard?limit=1000")
    scripted = re.findall(r"\burl: '([^']+)'", html) + re.findall(r'get(?:Json|All)\(\s*[`"]([a-z][^`"$]*)[`"]', html)
    return parser.urls + scripted


@pytest.fixture(scope="module", params=["", "/api"], ids=["root", "behind-prefix"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'empty.db'}"
    upgrade(url)  # an empty database: the board's routes answer [] or 404 (no checkpoint yet)
    settings = load_settings(
        database_url=url,
        read_database_url=None,
        api_public_keys="public-key",
        api_cors_origins="",
        crunch_contract=None,
    )
    test_client = TestClient(create_app(settings), root_path=request.param)
    test_client.prefix = request.param  # type: ignore[attr-defined]
    return test_client


@pytest.mark.parametrize("page", PAGES)
def test_pages_reference_no_outside_host(client: TestClient, page: str) -> None:
    response = client.get(page)  # open: no key needed even with API_PUBLIC_KEYS set
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = references(response.text)
    assert urls, page
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
    if page != "/board":  # the board's script names the SVG namespace URI, which loads nothing
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", response.text), response.text
    assert "fonts.googleapis" not in response.text and "cdn." not in response.text


@pytest.mark.parametrize("page", PAGES)
def test_every_referenced_asset_is_served(client: TestClient, page: str) -> None:
    root = client.prefix
    html = client.get(page).text
    urls = references(html)
    if page == "/board":
        assert {"info", "reports/leaderboard?limit=1000", "reports/checkpoints/latest"} <= set(urls), urls
    else:
        assert any(url.startswith(f"{root}/static/") for url in urls), urls
        assert f"{root}/openapi.json" in urls
    for url in urls:
        absolute = urljoin(f"http://testserver{root}{page}", url)
        path = urlsplit(absolute).path
        assert path.startswith(f"{root}/"), (page, url)
        query = urlsplit(absolute).query
        # the full path, prefix included, as a server behind a proxy passes it (ASGI: path includes root_path)
        response = client.get(path + (f"?{query}" if query else ""), headers=KEY)
        if path.endswith("/reports/checkpoints/latest"):
            assert response.status_code == 404, response.text  # the empty database has none: the page says so
            continue
        assert response.status_code == 200, (page, url, response.status_code, response.text)
        assert response.content, (page, url)
        if path.endswith(".js"):
            assert "javascript" in response.headers["content-type"]
        elif path.endswith(".css"):
            assert response.headers["content-type"].startswith("text/css")
        if "/static/" in path:
            vendored = STATIC / path.split("/static/", 1)[1]
            assert response.content == vendored.read_bytes()


def test_vendored_assets_are_the_noted_versions() -> None:
    notes = (STATIC / "README.md").read_text()
    for name in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js"):
        digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in notes, name
    assert "5.35.0" in notes and "2.5.4" in notes
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (STATIC / licence).stat().st_size > 0
    assert 'PACKAGE_VERSION:"5.35.0"' in (STATIC / "swagger-ui/swagger-ui-bundle.js").read_text()
    assert 'Version: ","2.5.4"' in (STATIC / "redoc/redoc.standalone.js").read_text()


def test_home_redirects_to_the_board_and_docs_stay_out_of_the_schema(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == f"{client.prefix}/board"
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/static/nope.js").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/board", "/docs", "/redoc"} & set(paths)
    assert client.get("/reports/leaderboard").status_code == 401  # the data stays behind the key
