"""``/docs`` (Swagger UI), ``/redoc`` (ReDoc), the leaderboard page ``/board`` and their assets
under ``/static``, all served by the API itself: nothing is loaded from a CDN or a font service, so
the pages work without internet access. The assets are vendored in ``api/static`` (versions,
licences and checksums in ``api/static/README.md``). These routes are open (no key) and are not in
the OpenAPI schema. URLs honour the ASGI ``root_path`` (an API mounted behind a path prefix).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
BOARD_PAGE = STATIC_DIR / "board" / "index.html"
SWAGGER_JS = "swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui/swagger-ui.css"
FAVICON = "swagger-ui/favicon-32x32.png"
REDOC_JS = "redoc/redoc.standalone.js"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# Everything from this server only: a page cannot reach another host even where a bundle names one
# (ReDoc's footer loads the Redocly logo from its CDN; the policy stops that request in the browser).
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)
LOCAL_ONLY = {"Content-Security-Policy": CSP}


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def add_pages(app: FastAPI) -> None:
    """Mount ``/static`` and add ``/docs``, ``/docs/oauth2-redirect``, ``/redoc``, ``/board`` and ``/``
    (a redirect to ``/board``) to ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}/static/{SWAGGER_JS}",
            swagger_css_url=f"{root}/static/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}/static/{FAVICON}",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
            swagger_ui_parameters={"validatorUrl": None},  # the online validator badge calls an outside host
        )
        page.headers.update(LOCAL_ONLY)
        return page

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}/static/{REDOC_JS}",
            redoc_favicon_url=f"{root}/static/{FAVICON}",
            with_google_fonts=False,
        )
        page.headers.update(LOCAL_ONLY)
        return page

    @app.get("/board", include_in_schema=False)
    def board() -> FileResponse:
        """The public leaderboard page: it reads the JSON routes with relative URLs."""
        return FileResponse(
            BOARD_PAGE, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache", **LOCAL_ONLY}
        )

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{_root(request)}/board", status_code=307)
