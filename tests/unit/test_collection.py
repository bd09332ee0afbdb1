"""``collection.paused_collection``: no automatic cycle collection inside, restored after."""

from __future__ import annotations

import gc

import pytest

from coordinator_core.collection import paused_collection


def test_collection_is_off_inside_and_back_on_after_even_on_error() -> None:
    assert gc.isenabled()
    with paused_collection():
        assert not gc.isenabled()
        with paused_collection():  # nested: the inner block does not turn it back on
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_collection():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with paused_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
