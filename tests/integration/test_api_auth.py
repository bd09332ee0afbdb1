"""API keys by tier on every route (401 without or with an unknown key, 403 with a key of a lower
tier, admin refused to everyone when no admin key is configured), and CORS only for the
configured origins (SQLite and Postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration import test_api_support as support
from tests.integration.test_api_support import CHECKPOINT_ID, Dataset, make_client

api_db = support.api_db  # the shared fixture

PUBLIC = "public-key"
READ = "read-key"
ADMIN = "admin-key"

# every route and its tier, written out (not derived from the code under test)
TIERS = {
    ("GET", "/info"): "public",
    ("GET", "/reports/schema"): "public",
    ("GET", "/reports/schema/leaderboard-columns"): "public",
    ("GET", "/reports/schema/metrics-widgets"): "public",
    ("GET", "/reports/leaderboard"): "public",
    ("GET", "/reports/leaderboard/history"): "public",
    ("GET", "/reports/models"): "public",
    ("GET", "/reports/models/global"): "public",
    ("GET", "/reports/models/params"): "public",
    ("GET", "/reports/models/{model_id}/status"): "public",
    ("GET", "/reports/models/{model_id}/predictions"): "private",
    ("GET", "/reports/predictions"): "private",
    ("GET", "/reports/feeds"): "private",
    ("GET", "/reports/feeds/tail"): "private",
    ("GET", "/reports/snapshots"): "public",
    ("GET", "/reports/checkpoints"): "public",
    ("GET", "/reports/checkpoints/latest"): "public",
    ("GET", "/reports/checkpoints/latest/prizes"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/payload"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/clusters"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/emission"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/emission/cli-format"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/prizes"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/proof"): "public",
    ("GET", "/reports/checkpoints/{checkpoint_id}/explain"): "public",
    ("POST", "/reports/checkpoints/{checkpoint_id}/confirm"): "admin",
    ("PATCH", "/reports/checkpoints/{checkpoint_id}/status"): "admin",
    ("GET", "/reports/emissions/latest"): "public",
    ("GET", "/healthz"): "open",
}
BODIES = {"POST": {"tx_hash": "0xauth"}, "PATCH": {"status": "CLAIMABLE"}}


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    # admin routes aim at a checkpoint that does not exist: 404 proves the request got past auth
    # without changing the shared data
    checkpoint = "CKP_absent" if method != "GET" else CHECKPOINT_ID
    url = path.replace("{model_id}", "noisy").replace("{checkpoint_id}", checkpoint)
    params = {"model": "noisy"} if path.endswith(("/proof", "/explain")) else None  # their required parameter
    return client.request(method, url, headers=headers or {}, json=BODIES.get(method), params=params)


def passed(response: Any) -> bool:
    return response.status_code in (200, 404) and response.status_code not in (401, 403)


@pytest.fixture(scope="module")
def keyed(api_db: Dataset) -> Iterator[TestClient]:
    with make_client(
        api_db, api_public_keys=f"{PUBLIC},second-public", api_read_keys=READ, api_admin_keys=ADMIN
    ) as client:
        yield client


def test_the_tier_table_covers_every_route(keyed: TestClient) -> None:
    operations = {
        (method.upper(), path) for path, item in keyed.get("/openapi.json").json()["paths"].items() for method in item
    }
    assert operations == set(TIERS)


@pytest.mark.parametrize(("method", "path"), sorted(TIERS))
def test_every_route_by_tier(keyed: TestClient, method: str, path: str) -> None:
    tier = TIERS[(method, path)]
    outcomes = {
        "none": call(keyed, method, path),
        "unknown": call(keyed, method, path, {"X-API-Key": "not-a-key"}),
        "public": call(keyed, method, path, {"X-API-Key": PUBLIC}),
        "public2": call(keyed, method, path, {"Authorization": "Bearer second-public"}),
        "read": call(keyed, method, path, {"X-API-Key": READ}),
        "admin": call(keyed, method, path, {"Authorization": f"Bearer {ADMIN}"}),
    }
    codes = {name: response.status_code for name, response in outcomes.items()}
    if tier == "open":
        assert all(code == 200 for code in codes.values()), codes
        return
    assert codes["none"] == 401 and codes["unknown"] == 401, codes
    assert outcomes["none"].headers.get("WWW-Authenticate") == "Bearer"
    allowed = {"public": {"public", "public2", "read", "admin"}, "private": {"read", "admin"}, "admin": {"admin"}}[tier]
    for name in ("public", "public2", "read", "admin"):
        if name in allowed:
            assert passed(outcomes[name]), (name, codes)
        else:
            assert codes[name] == 403, (name, codes)


def test_no_keys_configured(api_db: Dataset) -> None:
    with make_client(api_db) as client:
        for (method, path), tier in TIERS.items():
            response = call(client, method, path)
            if tier == "admin":  # no admin key configured: refused to everyone, whatever they send
                assert response.status_code == 403
                assert call(client, method, path, {"X-API-Key": "anything"}).status_code == 403
            else:
                assert passed(response), (path, response.status_code)


def test_only_admin_keys(api_db: Dataset) -> None:
    with make_client(api_db, api_admin_keys=ADMIN) as client:
        assert client.get("/reports/leaderboard").status_code == 200  # public stays open
        assert client.get("/reports/predictions").status_code == 401  # private needs read or admin
        assert client.get("/reports/predictions", headers={"X-API-Key": ADMIN}).status_code == 200


def test_only_read_keys(api_db: Dataset) -> None:
    with make_client(api_db, api_read_keys=READ) as client:
        assert client.get("/reports/leaderboard").status_code == 200
        assert client.get("/reports/feeds").status_code == 401
        assert client.get("/reports/feeds", headers={"Authorization": f"Bearer {READ}"}).status_code == 200
        assert (
            client.patch(
                f"/reports/checkpoints/{CHECKPOINT_ID}/status",
                json={"status": "CLAIMABLE"},
                headers={"X-API-Key": READ},
            ).status_code
            == 403
        )


def test_only_public_keys_private_is_never_more_open(api_db: Dataset) -> None:
    with make_client(api_db, api_public_keys=PUBLIC) as client:
        assert client.get("/reports/predictions").status_code == 401
        assert client.get("/reports/predictions", headers={"X-API-Key": PUBLIC}).status_code == 200


def test_keys_are_compared_in_constant_time(api_db: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    import api.security

    seen: list[tuple[bytes, bytes]] = []
    real = api.security.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api.security.hmac, "compare_digest", spy)
    with make_client(api_db, api_read_keys="r1,r2,r3") as client:
        assert client.get("/reports/feeds", headers={"X-API-Key": "r1"}).status_code == 200
    assert len(seen) == 3 and all(isinstance(a, bytes) for a, _ in seen)  # every key, no early exit


def test_non_ascii_keys_are_refused_not_crashed(keyed: TestClient) -> None:
    response = keyed.get("/reports/leaderboard", headers={"X-API-Key": "clé\xff".encode("latin-1")})  # type: ignore[dict-item]
    assert response.status_code == 401


ORIGIN = "https://hub.example.com"


def test_cors_only_for_configured_origins(api_db: Dataset) -> None:
    with make_client(api_db, api_cors_origins=f"{ORIGIN},https://other.example.org") as client:
        preflight = client.options(
            "/reports/leaderboard",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "X-API-Key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
        simple = client.get("/reports/leaderboard", params={"limit": 1}, headers={"Origin": ORIGIN})
        assert simple.headers["access-control-allow-origin"] == ORIGIN
        assert "x-next-cursor" in simple.headers["access-control-expose-headers"].lower()
        for origin in ("https://evil.example.com", "null", "https://hub.example.com.evil.com"):
            response = client.get("/reports/leaderboard", headers={"Origin": origin})
            assert "access-control-allow-origin" not in response.headers
            preflight = client.options(
                "/reports/leaderboard", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
            )
            assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
    with make_client(api_db) as client:  # no origin configured: no CORS at all
        response = client.get("/reports/leaderboard", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers


def test_wildcard_origin_is_refused_at_configuration(api_db: Dataset) -> None:
    from coordinator_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="API_CORS_ORIGINS"):
        make_client(api_db, api_cors_origins="*")
