"""The missing-prediction policy (``MISSING_PREDICTION_POLICY``), parsed once.

* ``worst_in_round`` (default): a FAILED or ABSENT prediction counts with the worst valid score of
  its round (the lowest for ``desc`` ranking, the highest for ``asc``); a round with no valid
  score charges nothing.
* ``exclude``: missing predictions are not counted.
* ``constant:<x>``: they count with the score ``x``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class MissingPolicy:
    kind: Literal["worst_in_round", "exclude", "constant"]
    constant: float | None = None
    text: str = ""  # as written in the setting (stored with every penalty score)

    @classmethod
    def parse(cls, text: str) -> MissingPolicy:
        """``worst_in_round``, ``exclude`` or ``constant:<number>``; anything else is a ``ValueError``."""
        if text in ("worst_in_round", "exclude"):
            return cls(text, None, text)  # type: ignore[arg-type]
        if text.startswith("constant:"):
            try:
                return cls("constant", float(text.split(":", 1)[1]), text)
            except ValueError:
                pass
            raise ValueError("constant:<number>, e.g. constant:-100")
        raise ValueError("use worst_in_round, exclude or constant:<number>")

    def __str__(self) -> str:
        return self.text or self.kind

    def penalty(self, valid_scores: Sequence[float], direction: str) -> float | None:
        """The score a missing prediction of a round counts with, ``None`` when it is not counted."""
        if self.kind == "exclude":
            return None
        if self.kind == "constant":
            return self.constant
        if not valid_scores:
            return None
        return min(valid_scores) if direction == "desc" else max(valid_scores)
