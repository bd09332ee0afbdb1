"""Every test the README's "Guarantees" section names exists, so a promise never points at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def guarantees_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Guarantees\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def named_tests(section: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for each backticked ``tests/…py[::name]`` and each ``::name``, which
    belongs to the test file named last before it, as does a bare ``test_name``."""
    out: list[tuple[str, str | None]] = []
    current: str | None = None
    for token in re.findall(r"`([^`]+)`", section):
        match = re.fullmatch(r"(tests/[\w/]+\.py)(?:::(\w+))?", token)
        if match:
            if Path(match.group(1)).name.startswith("test_"):  # a driver or helper named on the way is no context
                current = match.group(1)
            out.append((match.group(1), match.group(2)))
        elif re.fullmatch(r"::\w+|test_\w+", token):
            assert current is not None, f"{token} is named before any test file"
            out.append((current, token.removeprefix("::")))
    return out


def test_the_guarantees_name_only_tests_that_exist() -> None:
    named = named_tests(guarantees_section())
    assert len(named) >= 40
    missing = []
    for path, name in named:
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(async )?def {name}\(", source.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"README 'Guarantees' names tests that do not exist: {missing}"
