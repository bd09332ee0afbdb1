"""Set-based writes: multi-row upserts and updates, the same on both databases.

Postgres
    Batches of ``COPY_THRESHOLD`` rows or more are copied (``COPY … FROM STDIN``, CSV) into a
    temporary staging table and applied with ONE statement: ``INSERT … SELECT … ON CONFLICT`` for
    upserts, ``UPDATE … FROM stage`` for updates. The CSV is built column by column (in chunks of
    ``COPY_CHUNK`` rows, so a batch's memory is its CSV, not every field held apart); a JSON
    column's texts are orjson's when the whole column reads back equal (as for the JSON rows
    below), else ``json.dumps``'s. Smaller batches use a cached statement executed
    for each row (updates only: psycopg2 sends one row per round trip, cheap for a handful).
    Smaller upserts (a round's predictions and its input, the models that changed) send their rows
    as ONE JSON parameter: ``INSERT … SELECT … FROM jsonb_populate_recordset(NULL::table, :rows)
    … ON CONFLICT … RETURNING``, a short statement Postgres parses once instead of a ``VALUES``
    list of one parameter per field (16 predictions: about 1.5 ms less per round). The rows go as
    ``jsonb``: parsed once, each JSON column's value taken as it is (as ``json`` a 19 KB round
    input was parsed twice: 1.6 ms against 1.0 ms). ``upsert_batches`` sends several such upserts
    (a round's inputs and predictions) as one statement of data-modifying CTEs. A JSON column
    holding ``None`` is stored as JSON ``null``, as SQLAlchemy stores it. Rows that JSON cannot
    carry exactly (a non-finite float; a NUL character; a value of another type, or a timestamp
    ``UTCDateTime`` refuses) go through SQLAlchemy's ``insertmanyvalues`` (multi-row ``VALUES``
    pages with ``RETURNING``) as before, so what is stored, and any error, is the same. The
    staging tables are ``CREATE TEMP TABLE … AS … WITH NO DATA`` (the target's column types, none
    of its constraints), emptied at the end of each transaction.
SQLite
    Updates: a cached statement run through ``executemany``: in-process, one prepared statement
    applied to every row, no round trips (the set-based form there). Upserts: ``insertmanyvalues``.

Upserts keep the idempotence of ``db.engine.upsert_statement``: a conflicting row is rewritten
only when one of its ``update`` columns changed, so a re-run writes 0 rows (the return value
counts rows inserted or changed).
"""

from __future__ import annotations

import io
import json
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from coordinator_core.db.engine import on_conflict, upsert_statement
from coordinator_core.db.types import UTCDateTime

COPY_THRESHOLD = 200
COPY_CHUNK = 2_000  # rows encoded at a time into a COPY's CSV
_STAGED_UPSERTS: dict[tuple[Any, ...], Any] = {}  # INSERT … SELECT FROM stage … ON CONFLICT, built once


def upsert_rows(
    session: Connection,
    target: Any,
    rows: Sequence[Mapping[str, Any]],
    conflict: list[str],
    update: list[str] | None = None,
    refresh: tuple[str, ...] = (),
    guard: str | None = None,
) -> int:
    """Insert ``rows`` into ``target`` (a Table); on a conflict on ``conflict``, do nothing or update
    ``update`` (+ ``refresh``) when changed. Returns the number of rows inserted or changed."""
    if not rows:
        return 0
    columns = list(rows[0])
    if _postgres(session) and len(rows) >= COPY_THRESHOLD:
        stage = _stage(session, target.name, columns)
        _copy(session, stage, target, columns, rows)
        key = (target.name, stage, tuple(conflict), tuple(update or ()), refresh, guard)
        stmt = _STAGED_UPSERTS.get(key)
        if stmt is None:
            from sqlalchemy.dialects.postgresql import insert

            source = table(stage, *[column(c) for c in columns])
            stmt = insert(target).from_select(columns, select(*[source.c[c] for c in columns]))
            stmt = _STAGED_UPSERTS[key] = on_conflict(stmt, target, conflict, update, refresh, guard)
        # the command's row count is the rows inserted or changed (a row the guard skips is not counted)
        return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
    if _postgres(session):
        recordset = _recordset_upsert(target, columns, conflict, update, refresh, guard)
        payload = None if recordset is None else _json_rows(target, columns, rows)
        if payload is not None:
            return len(session.execute(recordset, {"rows": payload}).all())
    stmt = upsert_statement(session, target, conflict, update, refresh, guard)
    return len(session.execute(stmt, [dict(r) for r in rows]).all())  # batched by insertmanyvalues


Batch = tuple[Any, Sequence[Mapping[str, Any]], list[str]]  # (target table, rows, conflict columns)
_RECORDSET_CHAINS: dict[tuple[Any, ...], Any] = {}  # several recordset upserts as one statement, built once


def upsert_batches(session: Connection, batches: Sequence[Batch]) -> list[int]:
    """``upsert_rows(session, target, rows, conflict)`` for each batch, in order (insert-only: a
    conflicting row is left as it is); the rows inserted per batch. On Postgres, when every
    non-empty batch takes the JSON-row path, they go as ONE statement: each upsert a
    data-modifying CTE, the statement the count of each (one round trip instead of one per
    batch; a later batch's foreign keys see an earlier batch's rows, as they would a statement
    earlier). Otherwise each batch goes on its own, as ``upsert_rows`` sends it."""
    present = [i for i, (_, rows, _) in enumerate(batches) if rows]
    counts = [0] * len(batches)
    if _postgres(session) and len(present) > 1 and all(len(batches[i][1]) < COPY_THRESHOLD for i in present):
        shapes = [(batches[i][0], list(batches[i][1][0]), batches[i][2], f"rows_{k}") for k, i in enumerate(present)]
        upserts = [
            _recordset_upsert(target, columns, conflict, None, (), None, param)
            for target, columns, conflict, param in shapes
        ]
        payloads = {
            param: None if stmt is None else _json_rows(target, columns, batches[i][1])
            for i, stmt, (target, columns, _, param) in zip(present, upserts, shapes, strict=True)
        }
        if all(payload is not None for payload in payloads.values()):
            key = tuple((target.name, tuple(columns), tuple(conflict)) for target, columns, conflict, _ in shapes)
            chain = _RECORDSET_CHAINS.get(key)
            if chain is None:
                ctes = [stmt.cte(f"batch_{k}") for k, stmt in enumerate(upserts)]
                chain = _RECORDSET_CHAINS[key] = select(
                    *[select(func.count()).select_from(c).scalar_subquery() for c in ctes]
                )
            for i, n in zip(present, session.execute(chain, payloads).one(), strict=True):
                counts[i] = int(n)
            return counts
    for i in present:
        target, rows, conflict = batches[i]
        counts[i] = upsert_rows(session, target, rows, conflict)
    return counts


def update_rows(session: Connection, target: Any, key: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Set, for each row, its columns on the ``target`` row whose ``key`` column equals the row's
    ``key`` value. Every row must have the same columns. Returns the number of rows updated."""
    if not rows:
        return 0
    columns = list(rows[0])
    values = [c for c in columns if c != key]
    if _postgres(session) and len(rows) >= COPY_THRESHOLD:
        stage = _stage(session, target.name, columns)
        _copy(session, stage, target, columns, rows)
        assignments = ", ".join(f'"{c}" = s."{c}"' for c in values)
        result = session.execute(
            text(f'UPDATE {target.name} SET {assignments} FROM {stage} AS s WHERE {target.name}."{key}" = s."{key}"')
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    stmt = (
        target.update().where(target.c[key] == bindparam(f"b_{key}")).values({c: bindparam(f"b_{c}") for c in values})
    )
    params = [{f"b_{c}": row[c] for c in columns} for row in rows]
    return int(session.execute(stmt, params).rowcount or 0)  # type: ignore[attr-defined]


# -- internals ----------------------------------------------------------------------------------------
_RECORDSET_UPSERTS: dict[tuple[Any, ...], Any] = {}  # INSERT … SELECT FROM jsonb_populate_recordset, built once


def _recordset_upsert(
    target: Any,
    columns: list[str],
    conflict: list[str],
    update: list[str] | None,
    refresh: tuple[str, ...],
    guard: str | None,
    param: str = "rows",
) -> Any:
    """``INSERT INTO target (columns) SELECT columns FROM jsonb_populate_recordset(NULL::target,
    :rows) ON CONFLICT …`` returning the first ``conflict`` column, built once per shape (the
    rows bound as ``param``); ``None`` when the rows leave out a column that has a Python-side
    default."""
    key = (target.name, tuple(columns), tuple(conflict), tuple(update or ()), refresh, guard, param)
    if key not in _RECORDSET_UPSERTS:
        from sqlalchemy.dialects.postgresql import JSONB, insert

        stmt = None  # a column the rows leave out would get a Python-side default: only the per-field path applies it
        if not any(c.default is not None and c.name not in columns for c in target.columns):
            source = func.jsonb_populate_recordset(text(f"NULL::{target.name}"), cast(bindparam(param), JSONB))
            rows = source.table_valued(*columns).alias("r")
            values = [_json_null_kept(target.c[c], rows.c[c]) for c in columns]
            stmt = insert(target).from_select(columns, select(*values), include_defaults=False)
            stmt = on_conflict(stmt, target, conflict, update, refresh, guard).returning(target.c[conflict[0]])
        _RECORDSET_UPSERTS[key] = stmt
    return _RECORDSET_UPSERTS[key]


def _json_null_kept(target_column: Any, value: Any) -> Any:
    """The recordset's ``value`` for ``target_column``: a JSON column whose type stores ``None`` as
    JSON ``null`` (SQLAlchemy's default, ``none_as_null=False``) gets ``'null'`` where the recordset
    holds SQL NULL (``jsonb_populate_recordset`` reads a JSON ``null`` field as SQL NULL), so a
    ``None`` is stored as the per-field path stores it."""
    if _column_kind(target_column.type) == "json" and not getattr(target_column.type, "none_as_null", False):
        return func.coalesce(value, cast(literal_column("'null'"), target_column.type))
    return value


def _json_rows(target: Any, columns: list[str], rows: Sequence[Mapping[str, Any]]) -> str | None:
    """``rows`` as one JSON array of objects that ``jsonb_populate_recordset`` turns back into
    exactly the values the per-field path would bind, or ``None`` when one value cannot go that
    way (see the module's docstring)."""
    found = [(c, _column_kind(target.c[c].type)) for c in columns]
    kinds = [(c, kind) for c, kind in found if kind is not None]
    if len(kinds) < len(found):
        return None
    out = []
    for row in rows:
        item = {}
        for c, kind in kinds:
            value = row[c]
            if value is None:
                continue  # left out: SQL NULL, or JSON null in a JSON column (``_json_null_kept``)
            if kind == "time":
                if type(value) is not datetime or value.tzinfo is None:
                    return None  # the per-field path refuses it with UTCDateTime's error
                value = value.astimezone(UTC).isoformat()
            elif kind == "text":
                if type(value) is not str or "\x00" in value:
                    return None  # Postgres refuses a NUL: the per-field path says so as before
            elif kind != "json" and type(value) not in _TYPES[kind]:
                return None
            item[c] = value
        out.append(item)
    return _dumps(out)


_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _dumps(out: list[dict[str, Any]]) -> str | None:
    """``out`` as JSON text, or ``None`` when ``json.dumps(allow_nan=False)`` refuses it (a
    non-finite float, an object JSON does not know). orjson writes it (about 5× faster) when its
    text reads back equal to ``out``: then it holds exactly the values ``json.dumps`` would write,
    up to spellings Postgres reads the same (``1e-05`` or ``0.00001``: the same digits, so the same
    ``numeric``; non-ASCII as UTF-8 or as an escape). Anything orjson converts that ``json.dumps``
    refuses or writes otherwise fails that check or raises here, and takes ``json.dumps``: a
    datetime, a dataclass or a subclass of str, int, float, dict or list (refused by the options),
    a UUID or an Enum (read back as a string), a tuple (read back as a list), a non-finite float
    (orjson writes ``null``)."""
    try:
        fast = orjson.dumps(out, option=_ORJSON_STRICT)
    except TypeError:
        fast = None
    if fast is not None and orjson.loads(fast) == out:
        return fast.decode()
    try:
        return json.dumps(out, allow_nan=False)
    except (TypeError, ValueError):  # a non-finite float, or an object JSON does not know
        return None


_TYPES = {"float": (float, int), "int": (int,), "bool": (bool,)}


def _column_kind(kind: Any) -> str | None:
    """What a column holds, from its type: ``json``, ``text``, ``float``, ``bool``, ``int`` or
    ``time`` (``UTCDateTime``); ``None``: none of these. Both the COPY encoding and the JSON rows
    choose by it."""
    if isinstance(kind, UTCDateTime):
        return "time"
    if isinstance(kind, TypeDecorator):
        kind = kind.impl  # e.g. SQLModel's AutoString is a String
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, String):
        return "text"
    if isinstance(kind, Float):
        return "float"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Integer):
        return "int"
    return None


def _postgres(session: Connection) -> bool:
    return session.dialect.name == "postgresql"


def _stage(session: Connection, name: str, columns: list[str]) -> str:
    """A temporary table with ``columns`` of table ``name`` (types only), empty (one round trip)."""
    stage = f"stage_{name}_{zlib.crc32(','.join(columns).encode()):08x}"
    quoted = ", ".join(f'"{c}"' for c in columns)
    session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {quoted} FROM {name} WITH NO DATA; "
            f"TRUNCATE {stage}"
        )
    )
    return stage


def _copy(session: Connection, stage: str, target: Any, columns: list[str], rows: Sequence[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    for offset in range(0, len(rows), COPY_CHUNK):  # column by column within a chunk: bounded memory
        chunk = rows[offset : offset + COPY_CHUNK]
        fields = [_column_fields(target.c[c].type, c, [row[c] for row in chunk]) for c in columns]
        buffer.writelines(",".join(line) + "\n" for line in zip(*fields, strict=True))
        del fields
    buffer.seek(0)
    cursor = session.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor.copy_expert(f"COPY {stage} ({quoted}) FROM STDIN WITH (FORMAT csv)", buffer)


def _column_fields(kind: Any, name: str, values: list[Any]) -> list[str]:
    """One column's CSV fields, value by value as ``_encoder`` writes them (once per object for
    the columns whose values are often one object shared by many rows), except a JSON column:
    its distinct objects are written by orjson in one pass when the texts read back equal to them
    (``_dumps``'s check, on the whole column at once; about 5× faster than ``json.dumps`` for a
    score's result), else by ``json.dumps`` as before."""
    if _column_kind(kind) == "json":
        distinct = list({id(v): v for v in values}.values())  # every value stays alive: no id is reused
        fast = _orjson_each(distinct)
        if fast is not None:
            text_of = {id(v): _quote(t) for v, t in zip(distinct, fast, strict=True)}
            return [text_of[id(v)] for v in values]
    encode = _memo(_encoder(kind, name)) if _shared(kind) else _encoder(kind, name)
    return [encode(v) for v in values]


def _orjson_each(values: list[Any]) -> list[str] | None:
    """Each of ``values`` as orjson's JSON text, or ``None`` unless all of them read back equal
    to the values (see ``_dumps``: then each text holds exactly what ``json.dumps`` writes, up to
    spellings Postgres reads the same)."""
    dumps = orjson.dumps
    try:
        parts = [dumps(v, option=_ORJSON_STRICT) for v in values]
    except TypeError:
        return None
    if orjson.loads(b"[" + b",".join(parts) + b"]") != values:
        return None
    return [part.decode() for part in parts]


def _shared(kind: Any) -> bool:
    """Columns whose values are often one object shared by many rows (a round's scope, its time)."""
    return isinstance(kind, JSON | UTCDateTime)


def _memo(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    """``encode`` remembered per object identity, for one COPY (every row stays alive during it, so
    an identity is never reused)."""
    cache: dict[int, str] = {}

    def encoded(value: Any) -> str:
        key = id(value)
        text_value = cache.get(key)
        if text_value is None:
            text_value = cache[key] = encode(value)
        return text_value

    return encoded


def _quote(text_value: str) -> str:
    return '"' + text_value.replace('"', '""') + '"'


def _encoder(kind: Any, name: str) -> Callable[[Any], str]:
    """The CSV encoding of one column's values (NULL is an empty unquoted field; texts are quoted),
    chosen once per column from its type; values of an unexpected type go through ``_field``."""
    found = _column_kind(kind)
    if found == "json":
        dumps = json.dumps
        return lambda v: _quote(dumps(v))  # like SQLAlchemy's JSON type: None is stored as JSON null
    if found == "text":
        return lambda v: "" if v is None else (_quote(v) if type(v) is str else _field(v, False, name))
    if found == "float":
        return lambda v: repr(v) if type(v) is float and math.isfinite(v) else _field(v, False, name)
    if found == "bool":
        return lambda v: "t" if v is True else ("f" if v is False else _field(v, False, name))
    if found == "time":
        return lambda v: v.isoformat() if type(v) is datetime and v.tzinfo is UTC else _field(v, False, name)
    return lambda v: _field(v, False, name)


def _field(value: Any, is_json: bool, name: str) -> str:
    """One CSV field of any type."""
    if is_json:
        return _quote(json.dumps(value))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"))
        )
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: naive datetime {value.isoformat()} refused: timestamps must be timezone-aware")
        return value.astimezone(UTC).isoformat()
    return _quote(str(value))
