"""Deployment steps run by ``prefect deploy`` (named in ``prefect.yaml``).

``coordinator_home`` is the ``build:`` step that fixes, at deploy time, the directory every
deployed run executes in (the ``pull:`` step ``set_working_directory`` reads its output):
``COORDINATOR_HOME`` when it is set, else the clone that ``prefect deploy`` runs from. A bare
``prefect deploy --all`` from a clone therefore works as ``make deploy`` does; before, Prefect
stored ``{{ $COORDINATOR_HOME }}`` unresolved and each run looked for its code in "" on the worker.
"""

from __future__ import annotations

import os
from pathlib import Path

CLONE = Path(__file__).resolve().parent.parent


def _is_clone(path: Path) -> bool:
    return (path / "prefect.yaml").is_file() and (path / "flows").is_dir()


def coordinator_home() -> dict[str, str]:
    """``{"directory": <absolute path>}``: where the runs of the deployments being made execute."""
    value = os.environ.get("COORDINATOR_HOME", "").strip()
    if value:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = (Path.cwd() / path).resolve()
        if not _is_clone(path):
            print(
                f"COORDINATOR_HOME={value}: no clone of the coordinator there on this machine; "
                f"each worker must have one at {path} (with `make env` done)"
            )
        return {"directory": str(path)}
    for candidate in (CLONE, Path.cwd()):
        if _is_clone(candidate):
            return {"directory": str(candidate)}
    raise ValueError(
        "COORDINATOR_HOME is not set and prefect deploy does not run from a clone of the coordinator: "
        "set COORDINATOR_HOME to the clone the workers run the flows from (or run `make deploy` in it)"
    )
