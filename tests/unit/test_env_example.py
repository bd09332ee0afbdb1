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


def test_the_settings_written_empty_are_exactly_those_where_empty_means_the_default() -> None:
    from coordinator_core.config import EMPTY_MEANS_DEFAULT

    text = EXAMPLE.read_text()
    written_empty = set(re.findall(r"^([A-Z_]+)=[ \t]*(?:#|$)", text, re.M))
    assert written_empty == {name.upper() for name in EMPTY_MEANS_DEFAULT}
    header = text.split("# Every other variable refuses an empty value")[0].split("# Empty values.")[1]
    listed = {word for line in header.splitlines()[2:] for word in line.lstrip("# ").split()}
    assert listed == written_empty


def test_the_variables_read_elsewhere_are_documented() -> None:
    from coordinator_core.preflight import KNOWN_VARIABLES

    text = EXAMPLE.read_text()
    assert all(name in text for name in KNOWN_VARIABLES)
