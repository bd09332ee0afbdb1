"""In-process gateway: participant classes loaded from ``MODELS_DIR/<name>/main.py``.

Each folder is one model (id = folder name). ``main.py`` must define a subclass of
``MODEL_BASE_CLASSNAME``; an optional ``model.json`` gives ``name``, ``player_id``,
``player_name``, ``wallet`` and ``hotkey``. Calls run concurrently on a bounded pool of
``LOCAL_MODEL_WORKERS`` threads (``gateway.pool``), each with the deadline
``LOCAL_MODEL_TIMEOUT_SECONDS`` measured from the call's own start: a call still running at its
deadline is reported TIMEOUT and its thread is abandoned and replaced (Python cannot kill a
thread), so a slow model never holds up the others; until that call returns, the model's next
calls are TIMEOUT ("still busy").

Methods and arguments follow the contract's ``calls`` exactly as the model-runner backend does
(same names, positional/keyword, STRING/INT/DOUBLE conversion). JSON arguments are encoded and
decoded once per call, as the wire would carry them, and every model receives the same decoded
value, read-only (``gateway.frozen``): a model that tries to change it gets a ``TypeError``
(its call FAILS) and no model can alter what another sees.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import threading
import traceback
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any

from coordinator_core.contract import ModelCalls, ModelMethod
from coordinator_core.errors import ConfigurationError
from coordinator_core.gateway.base import CallResult, CallStatus, ModelInfo, checked_steps, late
from coordinator_core.gateway.frozen import frozen_json
from coordinator_core.gateway.pool import Call, WorkerPool

log = logging.getLogger(__name__)


def resolve_base(classname: str) -> type:
    module_name, _, attr = classname.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigurationError(f"MODEL_BASE_CLASSNAME: cannot import {classname!r} ({exc})") from exc


_resolve_base = resolve_base


def _where(exc: BaseException, folder: Path) -> str:
    """`` (at main.py:12)``: where a model's own code raised while loading (the innermost line of
    its folder's files in the traceback; a syntax error's own line)."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return f" (at {Path(exc.filename).name}:{exc.lineno})"
    root = folder.resolve()
    inside = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve().is_relative_to(root)]
    if not inside:
        return ""
    return f" (at {Path(inside[-1].filename).resolve().relative_to(root)}:{inside[-1].lineno})"


class LocalGateway:
    def __init__(
        self,
        models_dir: Path,
        base_classname: str,
        timeout_seconds: float,
        calls: ModelCalls | None = None,
        workers: int = 32,
    ) -> None:
        if not models_dir.is_dir():
            raise ConfigurationError(f"MODELS_DIR: {models_dir} is not a directory of model folders")
        self.models_dir = models_dir
        self.timeout_seconds = timeout_seconds
        self.base = resolve_base(base_classname)
        self.calls = calls or ModelCalls()
        missing = [name for name in self.calls.methods() if not callable(getattr(self.base, name, None))]
        if missing:
            raise ConfigurationError(f"contract calls: {base_classname} has no method {', '.join(missing)}")
        self._infos: dict[str, ModelInfo] = {}
        self._instances: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._busy: dict[str, Call | None] = {}
        self._pool = WorkerPool(workers)
        self.load_errors: dict[str, str] = {}
        self.tick_cursors: dict[str, Any] = {}  # this process's instances: fresh, so nothing sent yet
        self.virtual_timeout_seconds: float | None = None
        self._load()

    # -- loading --------------------------------------------------------------------------------
    def _load(self) -> None:
        for folder in sorted(p for p in self.models_dir.iterdir() if p.is_dir() and (p / "main.py").exists()):
            model_id = folder.name
            meta = {}
            if (folder / "model.json").exists():
                meta = json.loads((folder / "model.json").read_text())
            self._infos[model_id] = ModelInfo(
                model_id=model_id,
                name=str(meta.get("name", model_id)),
                player_id=str(meta.get("player_id", model_id)),
                player_name=str(meta.get("player_name", model_id)),
                wallet=meta.get("wallet"),
                hotkey=meta.get("hotkey"),
                deployment_id=f"local:{folder}",
            )
            try:
                self._instances[model_id] = self._instantiate(model_id, folder / "main.py")
                self._locks[model_id] = threading.Lock()
            except Exception as exc:
                self.load_errors[model_id] = f"{type(exc).__name__}: {exc}{_where(exc, folder)}"
                log.warning("model %s failed to load: %s", model_id, self.load_errors[model_id])

    def _instantiate(self, model_id: str, path: Path) -> Any:
        module_name = f"coordinator_models.{model_id}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, self.base) and obj is not self.base
        ]
        if not classes:
            raise TypeError(f"{path} defines no subclass of {self.base.__module__}.{self.base.__name__}")
        return classes[0]()

    # -- protocol -------------------------------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        return list(self._infos.values())

    def tick(self, data: dict[str, Any], model_ids: Collection[str] | None = None) -> dict[str, CallResult]:
        if self.calls.tick is None:
            return {}
        return self._call_all(self.calls.tick, {"data": data}, model_ids)

    def predict(
        self, subject: str, horizon_seconds: int, step_seconds: int, steps: list[int] | None = None
    ) -> dict[str, CallResult]:
        values: dict[str, Any] = {"subject": subject, "horizon_seconds": horizon_seconds, "step_seconds": step_seconds}
        if any(argument.value == "steps" for argument in self.calls.predict.arguments):
            values["steps"] = checked_steps(self.calls.predict, steps)
        return self._call_all(self.calls.predict, values)

    def close(self) -> None:
        self._pool.close()

    # -- calls ----------------------------------------------------------------------------------
    def _call_all(
        self, spec: ModelMethod, values: dict[str, Any], model_ids: Collection[str] | None = None
    ) -> dict[str, CallResult]:
        method = spec.name
        positional, keywords = spec.bind(values)
        # one wire encoding and one decode per call, shared (read-only) by every model
        args = tuple(frozen_json(v) if kind == "JSON" else v for kind, v in positional)
        kwargs = {k: frozen_json(v) if kind == "JSON" else v for k, kind, v in keywords}
        results: dict[str, CallResult] = {}
        functions = {}
        for model_id, instance in self._instances.items():
            if model_ids is not None and model_id not in model_ids:
                continue
            previous = self._busy.get(model_id)
            if previous is not None and not previous.done:
                results[model_id] = CallResult(
                    CallStatus.TIMEOUT, detail="still busy with a previous call that timed out"
                )
                continue
            functions[model_id] = partial(self._run, model_id, instance, method, args, kwargs)
        deadline = self.virtual_timeout_seconds or self.timeout_seconds
        calls = self._pool.run_all(functions, deadline)
        for model_id, call in calls.items():
            if call.timed_out:
                self._busy[model_id] = call
                results[model_id] = CallResult(
                    CallStatus.TIMEOUT,
                    detail=f"{method} did not answer within {deadline:g} s",
                    exec_time_ms=deadline * 1000,
                )
                continue
            self._busy.pop(model_id, None)
            elapsed = ((call.finished or 0.0) - (call.started or 0.0)) * 1000
            if call.error is not None:
                frame = traceback.extract_tb(call.error.__traceback__)[-1]
                detail = f"{type(call.error).__name__}: {call.error} (at {Path(frame.filename).name}:{frame.lineno})"
                results[model_id] = CallResult(CallStatus.FAILED, None, detail, elapsed)
            else:
                results[model_id] = CallResult(
                    CallStatus.SUCCESS, call.value, late(elapsed, self.timeout_seconds), elapsed
                )
        return {model_id: results[model_id] for model_id in self._instances if model_id in results}

    def _run(self, model_id: str, instance: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._locks[model_id]:
            return getattr(instance, method)(*args, **kwargs)
