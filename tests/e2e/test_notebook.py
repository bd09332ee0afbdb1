"""``examples/backtest.ipynb`` runs top to bottom in a real kernel of this project's interpreter
(nbclient + ipykernel) and shows the leaderboard and the charts."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_MODELS, PROJECT_DIR

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

NOTEBOOK = PROJECT_DIR / "examples" / "backtest.ipynb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def kernel_of_this_interpreter(folder: Path) -> str:
    """A kernel spec that runs this interpreter (the project's .venv), whatever else is installed."""
    spec = folder / "kernels" / "coordinator-venv"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "coordinator", "language": "python"}))
    return "coordinator-venv"


def test_the_example_notebook_runs_and_draws_the_leaderboard_and_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    kernel = kernel_of_this_interpreter(tmp_path / "jupyter")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'notebook.db'}")
    monkeypatch.setenv("MODELS_DIR", str(EXAMPLE_MODELS))
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_DIR))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert sys.executable in printed  # the kernel is this interpreter
    assert f"report: {tmp_path / 'reports' / 'notebook-backtest.html'}" in printed
    assert (tmp_path / "reports" / "notebook-backtest.html").is_file()
    leaderboard = notebook.cells[4].outputs[0]["data"]
    for model in ("momentum", "mean_reversion", "noisy", "flaky", "sloppy", "slow"):
        assert model in leaderboard["text/html"]
    assert "score_recent (24 h)" in leaderboard["text/html"]
    images = [
        base64.b64decode(o["data"]["image/png"])
        for o in outputs
        if o.output_type == "execute_result" and "image/png" in o["data"]
    ]
    assert len(images) == 3  # scores, rewards, failures
    for png in images:
        assert png.startswith(PNG_MAGIC) and len(png) > 5_000
    failures = notebook.cells[-1].outputs[0]["data"]["text/html"]
    assert "invalid_output" in failures and "model_error" in failures  # sloppy and flaky
