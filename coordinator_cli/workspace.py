"""``coordinator init NAME``: write a competition workspace from the templates in
``coordinator_cli/workspace_template`` (package data: every ``*.tmpl`` file, written without the
suffix, ``{{name}}`` and ``{{python}}`` filled in), plus a copy of the shipped replay data.

The workspace finds the coordinator through its ``Makefile``'s ``PYTHON`` (default: the
interpreter that ran ``init``, ``sys.executable``) and ``COORDINATOR`` (default:
``$(PYTHON) -m coordinator_cli.main``); both can be overridden on the ``make`` command line.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from coordinator_core.config import DEFAULT_REPLAY_PATH
from coordinator_core.errors import ConfigurationError

TEMPLATE_DIR = Path(__file__).resolve().parent / "workspace_template"
#: templates whose written name is not their own (hidden files are kept out of the package's
#: ignore rules by a visible name)
RENAMES = {"local.env": ".local.env", "gitignore": ".gitignore"}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATE_DIR.rglob("*.tmpl") if p.is_file())


def write_workspace(name: str, parent: Path, python: str | None = None) -> Path:
    """Write the workspace ``parent / name``; refuses a name that is no plain folder name and a
    folder that exists and is not empty. Returns the folder."""
    if not NAME.match(name):
        raise ConfigurationError(
            f"init: {name!r} is not a workspace name: a letter, then letters, digits, '-' or '_' (at most 64)"
        )
    target = (parent / name).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "is a file" if not target.is_dir() else "exists and is not empty"
        raise ConfigurationError(f"init: {target} {what}; choose another NAME or --path (nothing was written)")
    values = {"{{name}}": name, "{{python}}": python or sys.executable}
    for template in template_files():
        relative = template.relative_to(TEMPLATE_DIR).with_suffix("")  # drop .tmpl
        relative = relative.with_name(RENAMES.get(relative.name, relative.name))
        text = template.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    (target / "data").mkdir(exist_ok=True)
    shutil.copyfile(DEFAULT_REPLAY_PATH, target / "data" / DEFAULT_REPLAY_PATH.name)
    return target
