"""Rows to records: what the store's queries hand out (plain dataclasses, no session attached).

Derived from the record's dataclass fields: each field is read from the row's attribute of the
same name and shaped by the field's type (UTC datetimes, tuples, fresh dicts, bools, the status
enums of ``nas.status``). A field the row does not have comes from ``computed`` (a candidate's
``metrics``: its metric columns gathered). So a new field is two edits: the row and the record.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from nas.store._models import CandidateModel, ExportModel, JobModel, TokenModel
from nas.store._records import METRIC_COLUMNS, CandidateRecord, ExportRecord, JobRecord, TokenRecord, utc

R = TypeVar("R")


def _shaper(hint: Any) -> Callable[[Any], Any]:
    """How a row's value becomes a record field of type ``hint``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1
    base = args[0] if optional else hint
    origin = typing.get_origin(base) or base
    if origin is datetime:
        return utc
    if origin is tuple:
        return lambda v: tuple(v or ())
    if origin is dict:
        return (lambda v: dict(v) if v is not None else None) if optional else (lambda v: dict(v or {}))
    if origin is bool and not optional:
        return bool
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return lambda v: origin(v) if v is not None else None
    return lambda v: v


@functools.cache
def _plan(record: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    hints = typing.get_type_hints(record)
    return tuple((f.name, _shaper(hints[f.name])) for f in dataclasses.fields(record))


def to_record(record: type[R], row: Any, **computed: Callable[[Any], Any]) -> R:
    """``record`` filled from ``row``, field by field (``computed``: fields the row lacks)."""
    values = {}
    for name, shape in _plan(record):
        values[name] = computed[name](row) if name in computed else shape(getattr(row, name))
    return record(**values)


def _metrics(m: CandidateModel) -> dict[str, float | None]:
    return {c: getattr(m, c) for c in METRIC_COLUMNS}


def _job(m: JobModel) -> JobRecord:
    return to_record(JobRecord, m)


def _candidate(m: CandidateModel) -> CandidateRecord:
    return to_record(CandidateRecord, m, metrics=_metrics)


def _export(m: ExportModel) -> ExportRecord:
    return to_record(ExportRecord, m)


def _token(m: TokenModel) -> TokenRecord:
    return to_record(TokenRecord, m)
