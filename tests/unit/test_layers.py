"""Two rules of the composition (README, "Architecture"), checked on the source: no service reads
the system clock (time is passed in), and the gateway protocol imports none of its backends."""

from __future__ import annotations

import ast
from pathlib import Path

import coordinator_core

ROOT = Path(coordinator_core.__file__).parent
CLOCKS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time")}


def _clock_reads(path: Path) -> list[str]:
    """``name.attr(...)`` calls in ``path`` that read the system clock, as ``file:line name.attr``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in CLOCKS:
                found.append(f"{path.name}:{node.lineno} {name}.{node.func.attr}")
    return found


def test_the_clock_finder_finds_a_clock_read(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import datetime, time\nx = datetime.datetime.now()\ny = time.time()\nz = now(1)\nw = d.now\n")
    assert _clock_reads(probe) == ["probe.py:2 datetime.now", "probe.py:3 time.time"]


def test_no_service_reads_the_system_clock() -> None:
    reads = [read for path in sorted((ROOT / "services").glob("*.py")) for read in _clock_reads(path)]
    assert reads == [], f"services must take the time as a parameter: {reads}"


def test_the_gateway_protocol_imports_none_of_its_backends() -> None:
    tree = ast.parse((ROOT / "gateway" / "base.py").read_text())
    imported = {
        alias.name if isinstance(node, ast.Import) else str(node.module)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    backends = {f"coordinator_core.gateway.{m}" for m in ("local", "model_runner", "orchestrator", "pool")}
    assert not imported & backends, imported & backends
