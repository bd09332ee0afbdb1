"""Admin actions on the backtest's checkpoint (SQLite and Postgres): confirm (idempotent, 409 on
another hash, conditional so that concurrent confirms have one winner) and status transitions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from threading import Barrier

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from coordinator_core.db.tables import Checkpoint
from tests.integration import test_api_support as support
from tests.integration.test_api_support import CHECKPOINT_ID, NOW, Dataset, make_client, parse_ts

api_db = support.api_db  # the shared fixture

ADMIN = {"X-API-Key": "admin-key"}
URL = f"/reports/checkpoints/{CHECKPOINT_ID}"


@pytest.fixture(scope="module")
def admin(api_db: Dataset) -> Iterator[TestClient]:
    with make_client(api_db, api_admin_keys="admin-key", api_read_keys="read-key") as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def pending(api_db: Dataset) -> Iterator[None]:
    """Every test starts and ends with the checkpoint PENDING and unconfirmed (the data is shared)."""

    def reset() -> None:
        with Session(api_db.engine) as session:
            session.connection().execute(
                update(Checkpoint.__table__)
                .where(Checkpoint.__table__.c.id == CHECKPOINT_ID)
                .values(status="PENDING", tx_hash=None, submitted_at=None)
            )
            session.commit()

    reset()
    yield
    reset()


def stored(data: Dataset) -> Checkpoint:
    with Session(data.engine) as session:
        row = session.get(Checkpoint, CHECKPOINT_ID)
        assert row is not None
        return row


def test_confirm_records_the_transaction_and_is_idempotent(admin: TestClient, api_db: Dataset) -> None:
    assert admin.get(URL).json()["status"] == "PENDING"  # warms the lookup's cache
    first = admin.post(f"{URL}/confirm", json={"tx_hash": "0xabc"}, headers=ADMIN)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["tx_hash"]) == ("SUBMITTED", "0xabc")
    assert parse_ts(body["submitted_at"]) == NOW
    row = stored(api_db)
    assert (row.status, row.tx_hash, row.submitted_at) == ("SUBMITTED", "0xabc", NOW)
    assert admin.get(URL).json() == body
    again = admin.post(f"{URL}/confirm", json={"tx_hash": "0xabc"}, headers=ADMIN)
    assert again.status_code == 200 and again.json() == body  # nothing changed
    other = admin.post(f"{URL}/confirm", json={"tx_hash": "0xdef"}, headers=ADMIN)
    assert other.status_code == 409 and "another tx_hash" in other.json()["detail"]
    assert stored(api_db).tx_hash == "0xabc"
    # still idempotent after the status moved on
    assert admin.patch(f"{URL}/status", json={"status": "CLAIMABLE"}, headers=ADMIN).status_code == 200
    late = admin.post(f"{URL}/confirm", json={"tx_hash": "0xabc"}, headers=ADMIN)
    assert late.status_code == 200 and late.json()["status"] == "CLAIMABLE"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"tx_hash": ""},
        {"tx_hash": "   "},
        {"tx_hash": "a b"},
        {"tx_hash": None},
        {"tx_hash": 12},
        {"tx_hash": "x" * 257},
        {"tx_hash": "ok", "extra": 1},
        [],
        "0xabc",
    ],
)
def test_confirm_rejects_bad_bodies(admin: TestClient, api_db: Dataset, body: object) -> None:
    response = admin.post(f"{URL}/confirm", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert stored(api_db).status == "PENDING"


def test_confirm_unknown_checkpoint(admin: TestClient) -> None:
    assert (
        admin.post("/reports/checkpoints/CKP_nope/confirm", json={"tx_hash": "0x1"}, headers=ADMIN).status_code == 404
    )


def test_concurrent_confirms_have_one_winner(admin: TestClient, api_db: Dataset) -> None:
    hashes = [f"0x{i:04x}" for i in range(8)]
    barrier = Barrier(len(hashes))

    def confirm(tx_hash: str) -> tuple[int, str]:
        barrier.wait()
        return admin.post(f"{URL}/confirm", json={"tx_hash": tx_hash}, headers=ADMIN).status_code, tx_hash

    with ThreadPoolExecutor(len(hashes)) as pool:
        results = list(pool.map(confirm, hashes))
    codes = Counter(code for code, _ in results)
    assert codes == {200: 1, 409: len(hashes) - 1}, results
    winner = next(h for code, h in results if code == 200)
    assert stored(api_db).tx_hash == winner


def test_status_transitions(admin: TestClient, api_db: Dataset) -> None:
    # PENDING: SUBMITTED only through confirm (it needs a tx_hash); no skipping ahead
    response = admin.patch(f"{URL}/status", json={"status": "SUBMITTED"}, headers=ADMIN)
    assert response.status_code == 409 and "confirm" in response.json()["detail"]
    response = admin.patch(f"{URL}/status", json={"status": "CLAIMABLE"}, headers=ADMIN)
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Cannot transition from PENDING to CLAIMABLE. Allowed: ['SUBMITTED']")
    assert admin.patch(f"{URL}/status", json={"status": "PENDING"}, headers=ADMIN).status_code == 200  # no-op
    assert stored(api_db).status == "PENDING"
    assert admin.post(f"{URL}/confirm", json={"tx_hash": "0xfeed"}, headers=ADMIN).status_code == 200
    assert admin.patch(f"{URL}/status", json={"status": "PAID"}, headers=ADMIN).status_code == 409  # skips CLAIMABLE
    claimable = admin.patch(f"{URL}/status", json={"status": "CLAIMABLE"}, headers=ADMIN)
    assert claimable.status_code == 200 and claimable.json()["status"] == "CLAIMABLE"
    assert claimable.json()["tx_hash"] == "0xfeed"
    paid = admin.patch(f"{URL}/status", json={"status": "PAID"}, headers=ADMIN)
    assert paid.status_code == 200 and paid.json()["status"] == "PAID"
    assert admin.patch(f"{URL}/status", json={"status": "PAID"}, headers=ADMIN).status_code == 200  # idempotent
    for backwards in ("CLAIMABLE", "SUBMITTED", "PENDING"):
        response = admin.patch(f"{URL}/status", json={"status": backwards}, headers=ADMIN)
        assert response.status_code == 409 and "Allowed: []" in response.json()["detail"]
    assert admin.post(f"{URL}/confirm", json={"tx_hash": "0xother"}, headers=ADMIN).status_code == 409
    row = stored(api_db)
    assert (row.status, row.tx_hash) == ("PAID", "0xfeed")
    fetched = admin.get(URL).json()  # the lookup (cached per row version on Postgres) sees every change
    assert (fetched["status"], fetched["tx_hash"]) == ("PAID", "0xfeed")
    assert admin.get("/reports/checkpoints", params={"status": "PAID"}).json()[0]["id"] == CHECKPOINT_ID


@pytest.mark.parametrize("body", [{"status": "DONE"}, {"status": "paid"}, {}, {"status": None}, {"state": "PAID"}])
def test_status_rejects_invalid_values(admin: TestClient, body: object) -> None:
    response = admin.patch(f"{URL}/status", json=body, headers=ADMIN)
    assert response.status_code == 422


def test_status_unknown_checkpoint(admin: TestClient) -> None:
    response = admin.patch("/reports/checkpoints/CKP_nope/status", json={"status": "CLAIMABLE"}, headers=ADMIN)
    assert response.status_code == 404


def test_admin_actions_need_the_admin_key(admin: TestClient, api_db: Dataset) -> None:
    for headers, code in (
        ({}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"X-API-Key": "read-key"}, 403),
        ({"Authorization": "Bearer read-key"}, 403),
    ):
        assert admin.post(f"{URL}/confirm", json={"tx_hash": "0x1"}, headers=headers).status_code == code
        assert admin.patch(f"{URL}/status", json={"status": "CLAIMABLE"}, headers=headers).status_code == code
    assert stored(api_db).status == "PENDING"
    bearer = admin.post(f"{URL}/confirm", json={"tx_hash": "0x1"}, headers={"Authorization": "Bearer admin-key"})
    assert bearer.status_code == 200


def test_timestamps_round_trip(admin: TestClient) -> None:
    body = admin.post(f"{URL}/confirm", json={"tx_hash": "0x2"}, headers=ADMIN).json()
    assert datetime.fromisoformat(body["submitted_at"].replace("Z", "+00:00")) == NOW
