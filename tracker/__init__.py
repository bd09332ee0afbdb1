"""Participant-facing base class (the spec's default ``MODEL_BASE_CLASSNAME`` is ``tracker.TrackerBase``)."""

from tracker.base import TrackerBase

__all__ = ["TrackerBase"]
