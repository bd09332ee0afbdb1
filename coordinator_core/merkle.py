"""Tamper evidence for checkpoints: a SHA-256 Merkle tree over what a checkpoint pays on.

Standalone (no database, no project import): a proof file can be checked by anyone with this module
(``coordinator verify-proof FILE``) or by reimplementing the rules below.

**Leaves.** A leaf is a JSON object with a ``kind`` and an ``id``:

* ``{"kind": "score", "id": "SCR_<prediction id>", "prediction_id", "model_id", "input_id",
  "prediction_status", "value", "success", "scored_at"}``: every score row summed into the
  checkpoint's snapshots (``scored_at`` in ``(period_start, period_end]``);
* ``{"kind": "snapshot", "id", "model_id", "period_start", "period_end", "value_sum",
  "prediction_count", "scored_count", "failed_count", "absent_count"}``: every snapshot ending in
  ``(period_start, period_end]``;
* ``{"kind": "model", "id": <model id>, "root": <hex>, "leaf_count": n}``: the root of one model's
  own tree (its score and snapshot leaves);
* ``{"kind": "checkpoint", "id", "period_start", "period_end", "emission_sha256"}``: binds the
  period and the stored emission document (``sha256(canonical_json(emission))``).

Floats are carried as the text of Python's ``repr`` (shortest round-trip), timestamps as ISO-8601
UTC text (``datetime.isoformat()``, e.g. ``2019-10-01T03:00:00+00:00``), so a leaf holds only text,
integers, booleans and null and encodes the same in any language.

**Encoding.** ``canonical_json(x)`` = ``json.dumps(x, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` encoded as UTF-8.

**Hashes** (domain-separated, so a leaf can never pass for a node):
``leaf_hash(x) = SHA-256(0x00 || canonical_json(x))``; ``node_hash(l, r) = SHA-256(0x01 || l || r)``
over the 32-byte digests. Hex digests are lowercase.

**Order.** The leaves of a tree are sorted by ``(kind, id)`` (compared as text, which is their
UTF-8 byte order); two leaves with the same ``(kind, id)`` are refused.

**Tree.** Level by level, adjacent pairs are hashed; an odd node at the end of a level is promoted
unchanged to the next level (never duplicated, so no two leaf lists share a root). The root of one
leaf is its leaf hash; the root of no leaf is ``SHA-256(b"")``.

**Checkpoint root.** Each model's score and snapshot leaves form that model's tree; the checkpoint's
tree has one ``model`` leaf per model and the ``checkpoint`` leaf. Its root is stored in
``checkpoints.merkle_root``.

**Proof** of a model (``model_proof``): its leaves, its ``model`` leaf, that leaf's ``index`` among
the ``count`` sorted top-level leaves, and the audit ``path`` (sibling hashes from the bottom, each
with the side it sits on). ``verify_proof`` recomputes the model's root from its leaves, the top
root from the path, and compares it with the proof's ``root`` (and with an expected root if given).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PROOF_VERSION = 1
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


class ProofError(ValueError):
    """A proof (or a set of leaves) that does not verify; the message says where."""


# -- encoding and hashes ------------------------------------------------------------------------------
def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaf_hash(leaf: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + canonical_json(leaf)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def number(value: float) -> str:
    """A float as leaf text: Python's shortest round-trip ``repr``."""
    return repr(float(value))


def moment(value: datetime) -> str:
    return value.isoformat()


def sort_key(leaf: Mapping[str, Any]) -> tuple[str, str]:
    return (str(leaf["kind"]), str(leaf["id"]))


def sorted_leaves(leaves: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out = sorted(leaves, key=sort_key)
    for a, b in zip(out, out[1:], strict=False):
        if sort_key(a) == sort_key(b):
            raise ProofError(f"two leaves with the same kind and id {sort_key(a)}")
    return out


# -- trees --------------------------------------------------------------------------------------------
def levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree from the leaves up (the last level is the root alone)."""
    level = list(hashes)
    out = [level]
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # the odd node is promoted unchanged
        out.append(nxt)
        level = nxt
    return out


def root_of(hashes: Sequence[bytes]) -> str:
    return levels(hashes)[-1][0].hex() if hashes else EMPTY_ROOT


def tree_root(leaves: Iterable[Mapping[str, Any]]) -> str:
    """Root (hex) of ``leaves`` in their sorted order."""
    return root_of([leaf_hash(x) for x in sorted_leaves(leaves)])


def expected_sides(index: int, count: int) -> list[str]:
    """The sides of the siblings on the path of leaf ``index`` among ``count`` (bottom first)."""
    if not 0 <= index < count:
        raise ProofError(f"index {index} is outside 0..{count - 1}")
    sides = []
    while count > 1:
        if index % 2:
            sides.append("left")
        elif index + 1 < count:
            sides.append("right")
        # else: the odd last node is promoted, no sibling at this level
        index, count = index // 2, (count + 1) // 2
    return sides


def audit_path(hashes: Sequence[bytes], index: int) -> list[dict[str, str]]:
    """Sibling hashes of leaf ``index`` from the bottom, each with its side."""
    path = []
    for level in levels(hashes)[:-1]:
        if index % 2:
            path.append({"side": "left", "hash": level[index - 1].hex()})
        elif index + 1 < len(level):
            path.append({"side": "right", "hash": level[index + 1].hex()})
        index //= 2
    return path


def fold(leaf: bytes, path: Sequence[Mapping[str, str]]) -> str:
    current = leaf
    for step in path:
        sibling = bytes.fromhex(step["hash"])
        if len(sibling) != 32:
            raise ProofError("a path hash is not 32 bytes")
        current = node_hash(sibling, current) if step["side"] == "left" else node_hash(current, sibling)
    return current.hex()


# -- the checkpoint's leaves --------------------------------------------------------------------------
def score_leaf(
    prediction_id: str,
    model_id: str,
    input_id: str,
    prediction_status: str,
    value: float,
    success: bool,
    scored_at: datetime,
) -> dict[str, Any]:
    return {
        "kind": "score",
        "id": f"SCR_{prediction_id}",
        "prediction_id": prediction_id,
        "model_id": model_id,
        "input_id": input_id,
        "prediction_status": prediction_status,
        "value": number(value),
        "success": bool(success),
        "scored_at": moment(scored_at),
    }


def snapshot_leaf(
    snapshot_id: str,
    model_id: str,
    period_start: datetime,
    period_end: datetime,
    value_sum: float,
    prediction_count: int,
    scored_count: int,
    failed_count: int,
    absent_count: int,
) -> dict[str, Any]:
    return {
        "kind": "snapshot",
        "id": snapshot_id,
        "model_id": model_id,
        "period_start": moment(period_start),
        "period_end": moment(period_end),
        "value_sum": number(value_sum),
        "prediction_count": int(prediction_count),
        "scored_count": int(scored_count),
        "failed_count": int(failed_count),
        "absent_count": int(absent_count),
    }


def checkpoint_leaf(checkpoint_id: str, period_start: datetime, period_end: datetime, emission: Any) -> dict[str, Any]:
    return {
        "kind": "checkpoint",
        "id": checkpoint_id,
        "period_start": moment(period_start),
        "period_end": moment(period_end),
        "emission_sha256": sha256_hex(canonical_json(emission)),
    }


def model_leaf(model_id: str, leaves: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"kind": "model", "id": model_id, "root": tree_root(leaves), "leaf_count": len(leaves)}


@dataclass
class CheckpointTree:
    """The two-level tree of one checkpoint (see the module docstring)."""

    header: dict[str, Any]
    by_model: dict[str, list[Mapping[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, header: dict[str, Any], leaves: Iterable[Mapping[str, Any]]) -> CheckpointTree:
        tree = cls(header)
        for leaf in leaves:
            tree.by_model.setdefault(str(leaf["model_id"]), []).append(leaf)
        tree.by_model = {m: sorted_leaves(own) for m, own in sorted(tree.by_model.items())}
        return tree

    def top_leaves(self) -> list[Mapping[str, Any]]:
        return sorted_leaves([self.header, *(model_leaf(m, own) for m, own in self.by_model.items())])

    @property
    def root(self) -> str:
        return tree_root(self.top_leaves())

    @property
    def leaf_count(self) -> int:
        return sum(len(own) for own in self.by_model.values())

    def proof(self, model_id: str) -> dict[str, Any]:
        """The inclusion proof of ``model_id``'s leaves; ``KeyError`` if it has none."""
        own = self.by_model[model_id]
        top = self.top_leaves()
        mine = model_leaf(model_id, own)
        index = next(i for i, leaf in enumerate(top) if sort_key(leaf) == sort_key(mine))
        return {
            "version": PROOF_VERSION,
            "checkpoint_id": self.header["id"],
            "root": tree_root(top),
            "model_id": model_id,
            "checkpoint_leaf": self.header,
            "leaves": list(own),
            "model_leaf": mine,
            "index": index,
            "count": len(top),
            "path": audit_path([leaf_hash(x) for x in top], index),
        }


# -- verification -------------------------------------------------------------------------------------
def verify_proof(proof: Mapping[str, Any], expected_root: str | None = None) -> str:
    """Check a model's inclusion proof; returns the root it proves, raises ``ProofError`` if it does
    not verify (or does not match ``expected_root``)."""
    try:
        if proof.get("version") != PROOF_VERSION:
            raise ProofError(f"unknown proof version {proof.get('version')!r} (this verifier reads {PROOF_VERSION})")
        model_id = str(proof["model_id"])
        leaves = list(proof["leaves"])
        if not leaves:
            raise ProofError("the proof has no leaves")
        for leaf in leaves:
            if leaf.get("model_id") != model_id or leaf.get("kind") not in ("score", "snapshot"):
                raise ProofError(f"leaf {leaf.get('kind')}:{leaf.get('id')} is not a score or snapshot of {model_id}")
        if [sort_key(x) for x in leaves] != [sort_key(x) for x in sorted_leaves(leaves)]:
            raise ProofError("the leaves are not in (kind, id) order")
        mine = model_leaf(model_id, leaves)
        if dict(proof["model_leaf"]) != mine:
            raise ProofError(
                f"the leaves hash to model root {mine['root']} ({mine['leaf_count']} leaves), "
                f"not {proof['model_leaf'].get('root')} ({proof['model_leaf'].get('leaf_count')})"
            )
        path = list(proof["path"])
        sides = [str(step["side"]) for step in path]
        if sides != expected_sides(int(proof["index"]), int(proof["count"])):
            raise ProofError(f"the path does not fit index {proof['index']} of {proof['count']} leaves")
        root = fold(leaf_hash(mine), path)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, ProofError):
            raise
        raise ProofError(f"malformed proof: {type(exc).__name__}: {exc}") from None
    if root != proof.get("root"):
        raise ProofError(f"the path leads to root {root}, not the checkpoint's {proof.get('root')}")
    if expected_root is not None and root != expected_root.lower():
        raise ProofError(f"the proof is for root {root}, not the expected {expected_root}")
    return root
