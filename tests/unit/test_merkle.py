"""The checkpoint Merkle tree (coordinator_core.merkle): hand-computed roots, the odd-node rule,
domain separation, audit paths for every leaf, and proofs that break when any leaf changes."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinator_core import merkle
from coordinator_core.merkle import (
    EMPTY_ROOT,
    CheckpointTree,
    ProofError,
    audit_path,
    canonical_json,
    expected_sides,
    fold,
    leaf_hash,
    node_hash,
    root_of,
    tree_root,
    verify_proof,
)

T0 = datetime(2019, 10, 1, tzinfo=UTC)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_encoding_and_domain_separated_hashes_by_hand() -> None:
    leaf = {"kind": "score", "id": "SCR_p1", "value": "-1.5", "success": True}
    assert canonical_json(leaf) == b'{"id":"SCR_p1","kind":"score","success":true,"value":"-1.5"}'
    assert leaf_hash(leaf) == sha(b"\x00" + canonical_json(leaf))
    a, b = sha(b"a"), sha(b"b")
    assert node_hash(a, b) == sha(b"\x01" + a + b)
    assert node_hash(a, b) != node_hash(b, a)
    # a leaf whose encoding equals a node's preimage still hashes differently (the prefix byte differs)
    assert sha(b"\x00" + a + b) != node_hash(a, b)
    assert merkle.number(0.1) == "0.1" and merkle.number(-1e-7) == "-1e-07"
    assert merkle.moment(T0) == "2019-10-01T00:00:00+00:00"
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_roots_by_hand_and_the_odd_node_is_promoted() -> None:
    h = [sha(bytes([i])) for i in range(5)]
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()
    assert root_of(h[:1]) == h[0].hex()
    assert root_of(h[:2]) == node_hash(h[0], h[1]).hex()
    assert root_of(h[:3]) == node_hash(node_hash(h[0], h[1]), h[2]).hex()  # h2 promoted, not duplicated
    five = node_hash(node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3])), h[4])
    assert root_of(h) == five.hex()
    # no duplication: [a, b, c] and [a, b, c, c] have different roots
    assert root_of(h[:3]) != root_of([*h[:3], h[2]])


def test_leaves_are_sorted_by_kind_then_id_and_unique() -> None:
    leaves = [{"kind": "snapshot", "id": "S1"}, {"kind": "score", "id": "b"}, {"kind": "score", "id": "a"}]
    assert tree_root(leaves) == tree_root(list(reversed(leaves)))
    assert [merkle.sort_key(x) for x in merkle.sorted_leaves(leaves)] == [
        ("score", "a"),
        ("score", "b"),
        ("snapshot", "S1"),
    ]
    with pytest.raises(ProofError, match="same kind and id"):
        tree_root([{"kind": "score", "id": "a", "v": 1}, {"kind": "score", "id": "a", "v": 2}])


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70))
def test_every_audit_path_folds_to_the_root(count: int) -> None:
    hashes = [sha(str(i).encode()) for i in range(count)]
    root = root_of(hashes)
    for index in range(count):
        path = audit_path(hashes, index)
        assert [p["side"] for p in path] == expected_sides(index, count)
        assert fold(hashes[index], path) == root
        if path:  # any altered sibling breaks it
            broken = copy.deepcopy(path)
            broken[0]["hash"] = sha(b"x").hex()
            assert fold(hashes[index], broken) != root


def score(model: str, n: int, value: float) -> dict[str, Any]:
    return merkle.score_leaf(f"{model}-p{n}", model, f"in{n}", "SCORED", value, True, T0 + timedelta(minutes=n))


def snap(model: str, hour: int, value_sum: float, count: int) -> dict[str, Any]:
    start = T0 + timedelta(hours=hour)
    return merkle.snapshot_leaf(
        f"SNAP_{model}_{start:%Y%m%dT%H%M%S}", model, start, start + timedelta(hours=1), value_sum, count, count, 0, 0
    )


def tree() -> CheckpointTree:
    leaves = []
    for model, values in {"alpha": [-1.5, -2.25], "beta": [-0.5], "gamma": [-3.0, 0.0, -1e-9]}.items():
        leaves += [score(model, n, v) for n, v in enumerate(values)]
        leaves.append(snap(model, 0, sum(values), len(values)))
    emission = {"crunch": "", "cruncher_rewards": [{"cruncher_id": "a", "reward_pct": 1_000_000_000}]}
    header = merkle.checkpoint_leaf("CKP_X", T0, T0 + timedelta(days=1), emission)
    return CheckpointTree.build(header, leaves)


def test_each_models_proof_verifies_and_survives_json() -> None:
    built = tree()
    assert built.leaf_count == 9 and list(built.by_model) == ["alpha", "beta", "gamma"]
    for model in built.by_model:
        proof = json.loads(json.dumps(built.proof(model)))  # as a file or an API body carries it
        assert verify_proof(proof) == built.root
        assert verify_proof(proof, expected_root=built.root.upper()) == built.root
        assert proof["count"] == 4  # three models and the checkpoint leaf
    with pytest.raises(KeyError):
        built.proof("nobody")


def mutations(proof: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for index, leaf in enumerate(proof["leaves"]):
        for key in ("value", "value_sum", "prediction_count", "success", "scored_at"):
            if key in leaf:
                changed = copy.deepcopy(proof)
                value = leaf[key]
                changed["leaves"][index][key] = (
                    not value if isinstance(value, bool) else value + 1 if isinstance(value, int) else value + "1"
                )
                out.append((f"leaf {index} {key}", changed))
    dropped = copy.deepcopy(proof)
    dropped["leaves"].pop()
    swapped = copy.deepcopy(proof)
    swapped["leaves"].reverse()
    path = copy.deepcopy(proof)
    path["path"][0]["hash"] = "00" * 32
    side = copy.deepcopy(proof)
    side["path"][0]["side"] = "left" if side["path"][0]["side"] == "right" else "right"
    index = copy.deepcopy(proof)
    index["index"] = (index["index"] + 1) % index["count"]
    root = copy.deepcopy(proof)
    root["root"] = "ab" * 32
    stranger = copy.deepcopy(proof)
    stranger["leaves"][0]["model_id"] = "someone-else"
    return out + [
        ("a leaf dropped", dropped),
        ("leaves out of order", swapped),
        ("a path hash", path),
        ("a side", side),
        ("the index", index),
        ("the root", root),
        ("a leaf of another model", stranger),
    ]


def test_any_change_to_a_proof_breaks_it() -> None:
    proof = tree().proof("gamma")
    cases = mutations(proof)
    assert len(cases) > 10
    for what, changed in cases:
        with pytest.raises(ProofError):
            verify_proof(changed)
            pytest.fail(f"changing {what} went unnoticed")
    with pytest.raises(ProofError, match="not the expected"):
        verify_proof(proof, expected_root="cd" * 32)
    with pytest.raises(ProofError, match="malformed"):
        verify_proof({"version": 1, "model_id": "gamma"})
    with pytest.raises(ProofError, match="version"):
        verify_proof({**proof, "version": 2})


def test_a_changed_score_changes_the_checkpoint_root() -> None:
    base = tree()
    leaves = [leaf for own in base.by_model.values() for leaf in own]
    for index, leaf in enumerate(leaves):
        if leaf["kind"] != "score":
            continue
        changed = copy.deepcopy(leaves)
        changed[index]["value"] = merkle.number(float(leaf["value"]) + 1e-12)
        assert CheckpointTree.build(base.header, changed).root != base.root
    other_emission = merkle.checkpoint_leaf("CKP_X", T0, T0 + timedelta(days=1), {"crunch": "x"})
    assert CheckpointTree.build(other_emission, leaves).root != base.root
