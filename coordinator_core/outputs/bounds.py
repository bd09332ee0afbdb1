"""Bounds for any raw model output, checked before anything else touches it.

One hostile (or broken) model must not cost a round: a dict nested 5,000 levels deep would make
``json.dumps``, ``repr`` or a recursive validator raise ``RecursionError``; a list of 10⁸ items
or a 1 GB string would stall it. ``bounds_reason`` walks the value **iteratively** (an explicit
stack, no recursion), never calls ``repr``/``str`` on a container, and stops at the first
violation, so its cost is bounded by ``max_items`` whatever it is given.

Accepted values are what JSON can carry: exactly ``dict`` (keys ``str``, or ``int`` as in-process
trackers return them from ``predict_all``), ``list`` or ``tuple`` (not subclasses: they could
override iteration), ``str``, ``int`` (at most ``max_int_bits``), ``float`` (numpy's float64 is
one), ``bool`` and ``None``. Anything else (a numpy float32 or array, a set, an object) is refused:
over the wire the model node could not have encoded it either.
NaN and infinities are *not* a bounds matter; the output validators refuse them per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coordinator_core.errors import ValidationError
from coordinator_core.outputs._common import SHOWN_CHARS, index_path, key_path

__all__ = ["DEFAULT_BOUNDS", "Bounds", "bounds_reason", "check_bounds"]


@dataclass(frozen=True)
class Bounds:
    """Limits on a raw output. Defaults fit the largest legitimate answers of the games with room:

    * ``max_depth`` 32: a ``predict_all`` answer of three nested mixtures is 10 levels deep;
    * ``max_items`` 1,000,000 values (containers, scalars and keys): 1,000 Synth sample paths of
      289 points are 289,000; a 24 h ``predict_all`` with 25 components per density ≈ 60,000
      (the games allow 3 today);
    * ``max_string_length`` 10,000 characters per string or key;
    * ``max_int_bits`` 1,024 (a larger int does not convert to a float).
    """

    max_depth: int = 32
    max_items: int = 1_000_000
    max_string_length: int = 10_000
    max_int_bits: int = 1024


DEFAULT_BOUNDS = Bounds()


class _Node:
    """A position in the walk: the parent link gives the path (built only for a reason) and the
    ancestors (to tell a reference cycle from a deep value)."""

    __slots__ = ("value", "parent", "step", "depth")

    def __init__(self, value: Any, parent: _Node | None, step: Any, depth: int) -> None:
        self.value, self.parent, self.step, self.depth = value, parent, step, depth

    def path(self, root: str) -> str:
        steps: list[Any] = []
        node: _Node | None = self
        while node is not None and node.parent is not None:
            steps.append(node.step)
            node = node.parent
        text = root
        for step in reversed(steps):
            text = index_path(text, step[1]) if isinstance(step, tuple) else key_path(text, step)
        return text

    def is_ancestor(self, value: Any) -> bool:
        node = self.parent
        while node is not None:
            if node.value is value:
                return True
            node = node.parent
        return False


_PLAIN = {float, bool, type(None)}
_CONTAINERS = (dict, list, tuple)


def _scalar_reason(value: Any, bounds: Bounds) -> str | None:
    """Why a non-container value is refused, or ``None`` (also ``None`` for a container: it is walked).

    Containers must be exactly ``dict``/``list``/``tuple`` (what JSON decodes to): a subclass could
    override iteration or length. Scalars may be subclasses (numpy's float64 is a ``float``).
    """
    if type(value) in _CONTAINERS:
        return None
    if isinstance(value, str):
        if len(value) > bounds.max_string_length:
            return f"a string of {len(value)} characters (limit {bounds.max_string_length})"
        return None
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        if value.bit_length() > bounds.max_int_bits:
            return f"an integer of {value.bit_length()} bits (limit {bounds.max_int_bits})"
        return None
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    return f"a value of type {name} (only JSON values: object, list, string, number, boolean, null)"


def _key_reason(key: Any, bounds: Bounds) -> str | None:
    if isinstance(key, str):
        if len(key) > bounds.max_string_length:
            return f"a key of {len(key)} characters (limit {bounds.max_string_length}): {key[:SHOWN_CHARS]!r}…"
        return None
    if isinstance(key, bool) or not isinstance(key, int):
        return f"a key of type {type(key).__qualname__} (only strings and integers)"
    if key.bit_length() > bounds.max_int_bits:
        return f"an integer key of {key.bit_length()} bits (limit {bounds.max_int_bits})"
    return None


def bounds_reason(raw: Any, bounds: Bounds = DEFAULT_BOUNDS, *, root: str = "output") -> str | None:
    """``None`` when ``raw`` is within ``bounds``, else the reason naming where (``output.steps.300[4]: …``)."""
    reason = _scalar_reason(raw, bounds)
    if reason is not None:
        return f"{root}: {reason}"
    stack = [_Node(raw, None, None, 0)] if type(raw) in _CONTAINERS else []
    items = 1
    while stack:
        node = stack.pop()
        value = node.value
        if node.depth >= bounds.max_depth:
            return f"{node.path(root)}: nested deeper than {bounds.max_depth} levels"
        if node.is_ancestor(value):
            return f"{node.path(root)}: a reference cycle (the value contains itself)"
        items += len(value) * (2 if type(value) is dict else 1)
        if items > bounds.max_items:
            return f"{node.path(root)}: more than {bounds.max_items} values in the output"
        is_dict = type(value) is dict
        if not is_dict and set(map(type, value)) <= _PLAIN:
            continue  # a list of floats (a sample path): nothing to look into
        children: list[_Node] = []
        for step, child in value.items() if is_dict else enumerate(value):
            if is_dict:
                reason = _key_reason(step, bounds)
                if reason is not None:
                    return f"{node.path(root)}: {reason}"
            else:
                step = ("i", step)
            if type(child) in _CONTAINERS:
                children.append(_Node(child, node, step, node.depth + 1))
                continue
            reason = _scalar_reason(child, bounds)
            if reason is not None:
                return f"{_Node(child, node, step, node.depth + 1).path(root)}: {reason}"
        stack.extend(reversed(children))  # visited in document order
    return None


def check_bounds(raw: Any, bounds: Bounds = DEFAULT_BOUNDS, *, root: str = "output") -> None:
    """Raise ``ValidationError`` with ``bounds_reason`` when ``raw`` is out of bounds."""
    reason = bounds_reason(raw, bounds, root=root)
    if reason is not None:
        raise ValidationError(reason)
