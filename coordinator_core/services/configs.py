"""Scheduled prediction configs: where they come from, how they are seeded, when they are due.

Source, in order: ``SCHEDULED_PREDICTION_CONFIGS_PATH`` (a JSON array in the spec's format), the
contract's ``scheduled_configs``, else one config per subject at the contract's horizon plus one at
four times it. Seeding upserts by ``scope_key`` (ids derive from it, never from list position), so
seeding again never fails and never relinks history; configs no longer listed become inactive.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from coordinator_core.config import Settings
from coordinator_core.contract import CrunchContract, Schedule, ScheduledPredictionConfig
from coordinator_core.errors import ConfigurationError
from coordinator_core.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)
ALIASES = {"asset": "subject", "horizon": "horizon_seconds", "step": "step_seconds"}


def safe_key(text: str) -> str:
    """``text`` usable inside ids; injective: a key that needed changes gets a short hash suffix."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", text)
    return safe if safe == text else f"{safe}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def config_id(scope_key: str) -> str:
    return f"CFG_{safe_key(scope_key)}"


def load_config_file(path: str) -> list[ScheduledPredictionConfig]:
    """The configs of a JSON file; any problem raises ``ConfigurationError`` naming the variable,
    the file, the entry (index and ``scope_key``) and what to change."""
    file = Path(path)
    shown = path if file.is_absolute() else f"{path} (in {Path.cwd()})"
    variable = "SCHEDULED_PREDICTION_CONFIGS_PATH"
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{variable}: {shown} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{variable}: {shown} is a folder; name the JSON file of configs") from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{variable}: cannot read {shown} ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{variable}: {shown} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigurationError(f"{variable}: {shown} must hold a JSON array of configs")
    configs = []
    for index, item in enumerate(data):
        try:
            configs.append(ScheduledPredictionConfig.model_validate(item))
        except PydanticValidationError as exc:
            problems = []
            for error in exc.errors():
                where = ".".join(map(str, error["loc"]))
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}" if where else message)
            text = "; ".join(problems)
            key = item.get("scope_key") if isinstance(item, dict) else None
            named = f" (scope_key {key!r})" if isinstance(key, str) and repr(key) not in text else ""
            raise ConfigurationError(f"{variable}: {shown} entry {index}{named}: {text}") from None
    return configs


def default_configs(contract: CrunchContract, settings: Settings) -> list[ScheduledPredictionConfig]:
    if contract.profile is not None:  # one round per subject at the profile's horizon, steps, interval
        profile = contract.profile
        return [
            ScheduledPredictionConfig(
                scope_key=f"{subject}-{profile.horizon}",
                scope_template={
                    "subject": subject,
                    "horizon_seconds": profile.horizon,
                    "step_seconds": min(profile.steps),
                    "steps": list(profile.steps),
                },
                schedule=Schedule(prediction_interval_seconds=profile.interval, resolve_after_seconds=profile.horizon),
                order=order,
            )
            for order, subject in enumerate(settings.subjects)
        ]
    horizon, step = contract.scope.horizon_seconds, contract.scope.step_seconds
    configs = []
    for order, subject in enumerate(settings.subjects):
        for multiple in (1, 4):
            configs.append(
                ScheduledPredictionConfig(
                    scope_key=f"{subject}-{horizon * multiple}",
                    scope_template={
                        "subject": subject,
                        "horizon_seconds": horizon * multiple,
                        "step_seconds": step * multiple,
                    },
                    schedule=Schedule(prediction_interval_seconds=horizon, resolve_after_seconds=horizon * multiple),
                    order=order * 10 + multiple,
                )
            )
    return configs


def desired_configs(contract: CrunchContract, settings: Settings) -> list[ScheduledPredictionConfig]:
    if settings.scheduled_prediction_configs_path:
        configs = load_config_file(settings.scheduled_prediction_configs_path)
    elif contract.scheduled_configs is not None:
        configs = list(contract.scheduled_configs)
    else:
        configs = default_configs(contract, settings)
    seen: set[str] = set()
    for config in configs:
        if config.scope_key in seen:
            raise ConfigurationError(f"scheduled prediction configs: scope_key {config.scope_key!r} appears twice")
        seen.add(config.scope_key)
        scope = effective_scope(contract, config)
        if scope["subject"] not in settings.subjects:
            raise ConfigurationError(
                f"scheduled prediction config {config.scope_key!r}: subject {scope['subject']!r} is not in "
                f"FEED_SUBJECTS ({settings.feed_subjects}); its rounds could never be resolved"
            )
        if contract.supported_subjects is not None and scope["subject"] not in contract.supported_subjects:
            raise ConfigurationError(
                f"scheduled prediction config {config.scope_key!r}: the contract cannot score subject "
                f"{scope['subject']!r}; FEED_SUBJECTS must be among {', '.join(contract.supported_subjects)}"
            )
        warn_if_unresolvable(config.scope_key, scope, settings)
        finest = min(scope.get("steps") or [scope["step_seconds"]])
        if contract.truth == "price_path" and settings.granularity_seconds > finest:
            raise ConfigurationError(
                f"scheduled prediction config {config.scope_key!r}: its finest step is {finest} s but FEED_GRANULARITY "
                f"is {settings.feed_granularity}; the path rule needs prices at least every {finest} s "
                "(e.g. FEED_GRANULARITY=1m)"
            )
    return configs


def warn_if_unresolvable(scope_key: str, scope: dict[str, Any], settings: Settings) -> None:
    """Warn (at start: seeding runs before the first round) about a config whose rounds would give
    up before their exit price can be known: the price at t + h is observed one candle after its
    open (at once for a tick) and stored by the next poll (``INGEST_INTERVAL_SECONDS``)."""
    observed = settings.granularity_seconds if settings.feed_kind == "candle" else 0
    needed = observed + settings.ingest_interval_seconds
    if settings.resolve_give_up_seconds < needed:
        log.warning(
            "scheduled prediction config %r can never resolve: its exit price is stored at the earliest %d s after "
            "t + h (one %s candle plus one poll of INGEST_INTERVAL_SECONDS=%d), but RESOLVE_GIVE_UP_SECONDS=%d gives up "
            "before; raise RESOLVE_GIVE_UP_SECONDS",
            scope_key,
            needed,
            settings.feed_granularity,
            settings.ingest_interval_seconds,
            settings.resolve_give_up_seconds,
        )


def effective_scope(contract: CrunchContract, config: ScheduledPredictionConfig | dict[str, Any]) -> dict[str, Any]:
    """Contract scope overlaid with the config's template; refuses the old engine's alias keys."""
    template = config.scope_template if isinstance(config, ScheduledPredictionConfig) else config
    scope_key = config.scope_key if isinstance(config, ScheduledPredictionConfig) else "?"
    wrong = [k for k in ALIASES if k in template and ALIASES[k] not in template]
    if wrong:
        raise ConfigurationError(
            f"scheduled prediction config {scope_key!r}: scope_template uses {wrong}; "
            f"write {[ALIASES[k] for k in wrong]} instead"
        )
    scope = {**contract.scope.model_dump(exclude_none=True), **template}
    for key in ("horizon_seconds", "step_seconds"):
        if not isinstance(scope[key], int) or isinstance(scope[key], bool) or scope[key] < 1:
            raise ConfigurationError(f"scheduled prediction config {scope_key!r}: {key} must be a positive integer")
    if scope.get("steps") is not None:
        from coordinator_core.outputs import check_steps

        steps = scope["steps"]
        if not isinstance(steps, list) or not steps:
            raise ConfigurationError(f"scheduled prediction config {scope_key!r}: steps must be a non-empty list")
        try:
            scope["steps"] = list(check_steps(scope["horizon_seconds"], steps))
        except ConfigurationError as exc:
            raise ConfigurationError(f"scheduled prediction config {scope_key!r}: {exc}") from None
    return scope


def seed_configs(uow: UnitOfWorkFactory, contract: CrunchContract, settings: Settings, now: datetime) -> list[str]:
    """Upsert the desired configs; deactivate the ones no longer listed. Returns active ids."""
    configs = desired_configs(contract, settings)
    rows: list[dict[str, Any]] = [
        {
            "id": config_id(c.scope_key),
            "scope_key": c.scope_key,
            "scope_template_jsonb": c.scope_template,
            "schedule_jsonb": c.schedule.model_dump(),
            "active": c.active,
            "order": c.order,
            "meta_jsonb": c.meta,
            "updated_at": now,
        }
        for c in configs
    ]
    with uow() as work:
        work.configs.upsert(rows)
        work.configs.deactivate_unlisted([r["id"] for r in rows], now)
        work.commit()
    return [r["id"] for r in rows if r["active"]]
