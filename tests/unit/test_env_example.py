"""``.local.env.example`` documents every setting, and copying it changes nothing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from coordinator_core.config import Settings, load_settings
from tests.conftest import PROJECT_DIR

EXAMPLE = PROJECT_DIR / ".local.env.example"


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", EXAMPLE.read_text(), re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_copied_example_gives_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    defaults = load_settings()
    shutil.copy(EXAMPLE, tmp_path / ".local.env")
    assert load_settings() == defaults
    (tmp_path / ".local.env").write_text("FEED_SUBJECTS=BTC,ETH\nSCORE_BATCH_SIZE=0\n")
    with pytest.raises(Exception, match="SCORE_BATCH_SIZE"):
        load_settings()
