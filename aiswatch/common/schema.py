"""Settings models and what their errors say to a person.

``Settings`` is the base of every settings model (the configuration's sections, each source's
settings): unknown keys are refused, numbers are accepted where text is expected. ``describe_errors``
turns pydantic's ValidationError into (path, message) pairs a user can act on: the key's path, what
was expected, what was given, and for an unknown key the nearest known name.
"""
from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from aiswatch.common.errors import did_you_mean


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


_EXPECTED = {
    "int_parsing": "expected a whole number", "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number", "float_type": "expected a number",
    "bool_parsing": "expected true or false", "bool_type": "expected true or false",
    "string_type": "expected text", "list_type": "expected a list", "dict_type": "expected a mapping",
    "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
    "tuple_type": "expected a list", "missing": "required, but not given",
}


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the model found by following ``loc`` from ``model`` (for suggestions)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else current
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[part].annotation
        for arg in (typing.get_args(current) or ()):   # Optional[...] / list[...]: the model inside
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
    fields = getattr(current, "model_fields", None)
    if fields is None:
        for arg in typing.get_args(current):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                fields = arg.model_fields
    return list(fields or [])


def describe_errors(exc: ValidationError, model: type[BaseModel]) -> list[tuple[tuple, str]]:
    """(loc, message) for each error of ``exc``, raised validating ``model``."""
    out = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "union["))))
        kind = error["type"]
        given = error.get("input")
        if kind == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            message = f"unknown key{did_you_mean(str(loc[-1]), known)}"
            if known and not did_you_mean(str(loc[-1]), known):
                message += f"; known: {', '.join(known)}"
        elif kind == "value_error":
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        elif kind in _EXPECTED:
            message = _EXPECTED[kind] + ("" if kind == "missing" else f", got {given!r}")
        else:
            text = error["msg"]
            text = "must be" + text[len("Input should be"):] if text.startswith("Input should be") else text
            message = f"{text[0].lower()}{text[1:]}, got {given!r}"
        out.append((loc, message))
    return out


def dotted(loc: tuple) -> str:
    """``sources[0].port`` from ``("sources", 0, "port")``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
