"""The API's response models derived from the store's record dataclasses (``nas.store``), so that a
field added to a record reaches the API, its OpenAPI schema and its clients with no edit here: a
model is the record's fields and typed properties, less the ones a route must not show (each named
with its reason), plus the views a route adds (a job's progress, an export's URLs)."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo


def record_model(
    record: type,
    name: str,
    *,
    hidden: dict[str, str] | None = None,
    types: dict[str, Any] | None = None,
    views: dict[str, tuple[Any, FieldInfo]] | None = None,
    descriptions: dict[str, str] | None = None,
    doc: str | None = None,
    examples: list[dict[str, Any]] | None = None,
) -> type[BaseModel]:
    """A pydantic model of ``record``: its dataclass fields (typed as declared, or as ``types``
    says where the API sends another form, e.g. a JSON string as an object), then its public
    properties with a return type, less ``hidden`` (name -> why), plus ``views``."""
    hidden, types, views, descriptions = hidden or {}, types or {}, views or {}, descriptions or {}
    hints = typing.get_type_hints(record)
    shown = record_names(record)
    stale = [n for n in (*hidden, *types, *descriptions) if n not in shown]
    if stale:  # a renamed record field: say so here rather than let a hidden one leak
        raise TypeError(f"{name}: {record.__name__} has no {', '.join(stale)}")
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in hidden:
            continue
        if f.default is not dataclasses.MISSING:
            info = Field(f.default, description=descriptions.get(f.name))
        elif f.default_factory is not dataclasses.MISSING:
            info = Field(default_factory=f.default_factory, description=descriptions.get(f.name))
        else:
            info = Field(description=descriptions.get(f.name))
        fields[f.name] = (types.get(f.name, hints[f.name]), info)
    for prop, kind in _properties(record).items():
        if prop not in hidden:
            fields[prop] = (types.get(prop, kind), Field(description=descriptions.get(prop)))
    fields.update(views)
    extra = {"examples": examples} if examples else None
    return create_model(name, __doc__=doc or record.__doc__, __config__={"json_schema_extra": extra}, **fields)


def record_names(record: type) -> set[str]:
    return {f.name for f in dataclasses.fields(record)} | set(_properties(record))


def _properties(record: type) -> dict[str, Any]:
    """The record's public properties that declare what they return."""
    out = {}
    for name, member in inspect.getmembers(record, lambda m: isinstance(m, property)):
        kind = typing.get_type_hints(member.fget).get("return") if not name.startswith("_") else None
        if kind is not None:
            out[name] = kind
    return out


def record_values(model: type[BaseModel], record: Any, **views: Any) -> dict[str, Any]:
    """What ``model`` shows of ``record``: its ``to_dict()`` form where it has one (a JSON string
    as the object it holds), else the attribute; ``views`` as given."""
    source = record.to_dict() if hasattr(record, "to_dict") else {}
    return {
        name: views[name] if name in views else source[name] if name in source else getattr(record, name)
        for name in model.model_fields
        if name in views or hasattr(record, name)
    }


def row_model(
    record: type, name: str, keys: tuple[str, ...], *, types: dict[str, Any], rest: Any, doc: str
) -> type[BaseModel]:
    """A flat row of ``record`` (``keys``, e.g. ``nas.store.ROW_FIELDS``), every key optional (a
    query picks some): typed as the record declares it, as ``types`` says, else ``rest``."""
    hints = typing.get_type_hints(record)
    fields = {k: (types.get(k, hints.get(k, rest)) | None, None) for k in keys}
    return create_model(name, __doc__=doc, **fields)
