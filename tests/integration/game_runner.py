"""Run a game tracker in-process on a plan of ticks and ``predict_all`` calls (stdlib only at import).

Imported by the tests in ``.venv`` (Crunch-Synth) and run as a script under ``.venv-condor``
(condorgame needs Python >= 3.12)::

    .venv-condor/bin/python tests/integration/game_runner.py INPUT.json OUTPUT.json

INPUT: ``{"base": "condorgame.tracker.TrackerBase", "folders": [...], "plan": [...], "runs": 2,
"workdir": "..."}``; a plan step is ``{"tick": {asset: [[ts, price], ...]}}`` or
``{"predict": [asset, horizon, steps]}``. OUTPUT: per folder, the answers of every run (JSON), whether
the runs were identical as Python objects, the key and value types of the in-process answers, and
the package's constants.

The tracker class is picked as a model node picks it (``model_runner.utils.class_resolver``): the
first class, by name, of the folder's ``main.py`` that subclasses the base class, is not the base
class and is not defined in the base class's package.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def tracker_class(folder: Path, base_classname: str) -> type:
    module_name, _, class_name = base_classname.rpartition(".")
    base = getattr(importlib.import_module(module_name), class_name)
    package = base_classname.partition(".")[0]
    unique = f"game_model_{folder.parent.name}_{folder.name}"
    spec = importlib.util.spec_from_file_location(unique, folder / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    for _, candidate in inspect.getmembers(module, inspect.isclass):
        origin = getattr(candidate, "__module__", "")
        if candidate is base or origin == package or origin.startswith(package + "."):
            continue
        if issubclass(candidate, base):
            return candidate
    raise ImportError(f"No Inherited class found from {base} in {folder}")


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def settle(tracker: Any, timeout: float = 120.0) -> None:
    """Wait for a sub-tracker's first background training (crunch_synth's subtracker example), if any."""
    sub = getattr(tracker, "subtracker", None)
    if sub is None or not hasattr(sub, "fitted"):
        return
    deadline = time.monotonic() + timeout
    while not sub.fitted:
        if time.monotonic() > deadline:
            raise TimeoutError("the sub-tracker's background training did not finish")
        time.sleep(0.05)


def run_plan(
    tracker: Any, plan: list[dict[str, Any]], after_first_tick: Callable[[Any], None] | None = settle
) -> list[Any]:
    answers = []
    ticked = False
    for step in plan:
        if "tick" in step:
            tracker.tick(step["tick"])
            if not ticked and after_first_tick is not None:
                after_first_tick(tracker)
            ticked = True
        else:
            asset, horizon, steps = step["predict"]
            answers.append(tracker.predict_all(asset, horizon, steps))
    return answers


def types_of(answers: list[Any]) -> dict[str, list[str]]:
    """Type names of the keys and of the leaf values of in-process answers (what JSON will flatten)."""
    keys, values = set(), set()
    stack = list(answers)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys.update(type(k).__name__ for k in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            values.add(type(item).__name__)
    return {"keys": sorted(keys), "values": sorted(values)}


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[1]).read_text())
    base = request["base"]
    workdir = Path(request["workdir"])
    results: dict[str, Any] = {}
    for folder_text in request["folders"]:
        folder = Path(folder_text)
        cls = tracker_class(folder, base)
        runs = []
        for run in range(request.get("runs", 2)):
            with working_directory(workdir / f"{folder.name}-run{run}"):
                started = time.perf_counter()
                answers = run_plan(cls(), request["plan"])
                runs.append((answers, time.perf_counter() - started))
        results[folder.name] = {
            "class": f"{cls.__mro__[1].__module__}.{cls.__mro__[1].__qualname__}",
            "answers": [json.loads(json.dumps(answers)) for answers, _ in runs],
            "identical": all(answers == runs[0][0] for answers, _ in runs),
            "types": types_of(runs[0][0]),
            "seconds": [round(seconds, 3) for _, seconds in runs],
        }
    package = importlib.import_module(base.partition(".")[0] + ".constants")
    output = {
        "python": sys.version.split()[0],
        "constants": {
            "MAX_DISTRIBUTION_COMPONENTS": package.MAX_DISTRIBUTION_COMPONENTS,
            "FORECAST_PROFILES": package.FORECAST_PROFILES,
        },
        "results": results,
    }
    Path(argv[2]).write_text(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
