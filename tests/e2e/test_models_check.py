"""``coordinator models check PATH``, run as a participant would: a good model passes (exit 0); an
import error (with its file and line), a wrong output shape, an exception in predict and a
timeout are each reported with the reason, and the command exits 1."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from tests.conftest import EXAMPLE_MODELS
from tests.e2e.test_cli import run

BROKEN = {
    "import_error": "from tracker import TrackerBase\nimport no_such_package_for_models_check\n",
    "wrong_shape": """
        from tracker import TrackerBase

        class WrongShape(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                return {"value": [0.1, 0.2]}
    """,
    "raises": """
        from tracker import TrackerBase

        class Raises(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                raise ValueError("no idea what to predict")
    """,
    "sleeps": """
        import time
        from tracker import TrackerBase

        class Sleeps(TrackerBase):
            def predict(self, subject, horizon_seconds, step_seconds):
                time.sleep(2)
                return {"value": 0.0}
    """,
}


def _models(root: Path) -> Path:
    shutil.copytree(EXAMPLE_MODELS / "momentum", root / "good")
    for name, code in BROKEN.items():
        (root / name).mkdir(parents=True)
        (root / name / "main.py").write_text(textwrap.dedent(code))
    return root


def _rows(out: str) -> dict[tuple[str, str], str]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[2] in ("ok", "FAIL"):
            rows[(cells[0], cells[1])] = f"{cells[2]} {cells[3]}"
    return rows


def test_a_good_model_folder_passes(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE_MODELS / "momentum", tmp_path / "momentum")
    result = run(["models", "check", str(tmp_path / "momentum"), "--rounds", "2"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows[("momentum", "load")] == "ok ok"
    assert rows[("momentum", "BTC-3600")] == "ok 2/2 rounds ok"
    assert rows[("momentum", "BTC-14400")] == "ok 2/2 rounds ok"
    assert "all 4 checks passed" in result.stdout


def test_broken_models_are_reported_with_the_reason_and_exit_1(tmp_path: Path) -> None:
    models = _models(tmp_path / "models")
    result = run(
        ["models", "check", str(models), "--rounds", "2"], tmp_path, LOCAL_MODEL_TIMEOUT_SECONDS="0.5", COLUMNS="400"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows[("good", "BTC-3600")] == "ok 2/2 rounds ok"
    load = rows[("import_error", "load")]
    assert load.startswith("FAIL ModuleNotFoundError: No module named 'no_such_package_for_models_check'")
    assert load.endswith("(at main.py:2)")
    assert rows[("wrong_shape", "BTC-3600")].startswith("FAIL 2/2 rounds fail: invalid output: value:")
    assert "FAILED: ValueError: no idea what to predict (at main.py:6)" in rows[("raises", "BTC-3600")]
    assert (
        "TIMEOUT: predict did not answer within 0.5 s" in rows[("sleeps", "BTC-14400")] + rows[("sleeps", "BTC-3600")]
    )
    assert "would fail, in import_error, raises, sleeps, wrong_shape" in result.stdout


def test_a_folder_without_models_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run(["models", "check", str(tmp_path / "empty")], tmp_path)
    assert result.returncode == 2
    assert "neither a model folder (with a main.py) nor a folder of model folders" in " ".join(result.stdout.split())
