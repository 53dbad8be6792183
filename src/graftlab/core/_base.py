"""The base every config model derives from, and the formatter that turns its validation errors into sentences.

``Strict`` (unknown keys are errors, values validated on assignment) and ``format_validation_error`` serve the study
config (``graftlab.core.config``, ``graftlab.core.data_config``) and the other YAML files graftlab reads (serving,
monitoring, retraining, strategy parameters). Both are re-exported by ``graftlab.core.config``.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["Strict", "format_validation_error"]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Walk ``loc`` through nested pydantic models and return the field names at its parent."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        ann = fields[part].annotation
        current = _model_in(ann)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_in(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str = "config") -> str:
    """Turn pydantic's report into sentences naming the key, what is allowed and what was given."""
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc)
        given = e.get("input")
        if not key:  # a rule across several keys (a model validator): the whole input is no help to print
            text = e["msg"].removeprefix("Value error, ")
            msg = f"Invalid {source}: {text[0].lower() + text[1:]}."
        elif e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = f"Unknown key '{key}' in {source}."
            if hint:
                msg += f" Did you mean '{hint[0]}'?"
            if allowed:
                msg += f" Allowed keys here: {', '.join(allowed)}."
        elif e["type"] == "missing":
            msg = f"The key '{key}' is required in {source} but missing."
        else:
            text = e["msg"]
            text = text.removeprefix("Value error, ")
            msg = f"The '{key}' parameter is invalid: {text[0].lower() + text[1:]}. Got {given!r} instead."
        lines.append(msg)
    return "\n".join(lines)
