"""A study config can run code: a data source of kind ``python`` calls the user's function when the rows are read.

``graft study`` runs the config its user wrote; commands that re-read a *stored* config (``graft reproduce``,
``graft retrain``) name that code first and run it only when told to (``--trust-code``, or ``trust_code=True``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from .data_config import SourceConfig
from .errors import ConfigError

__all__ = ["UntrustedCodeError", "code_sources", "require_trusted"]


class UntrustedCodeError(ConfigError):
    """A stored config would run Python code and the caller did not say it trusts that code."""


def _sources(node: Any, key: str) -> Iterator[tuple[str, SourceConfig]]:
    # walks the whole config, so a source field added later is covered without a list to keep up to date
    if isinstance(node, SourceConfig):
        yield key, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from _sources(getattr(node, name), f"{key}.{name}" if key else name)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _sources(item, f"{key}[{i}]")
    elif isinstance(node, dict):
        for k, item in node.items():
            yield from _sources(item, f"{key}.{k}")


def code_sources(cfg: BaseModel) -> list[str]:
    """One line per source of kind ``python`` in ``cfg``: its key and the function it calls.

    Returns:
        e.g. ``["data.source calls 'load' in /data/load_rows.py", "data.test_source calls 'mypkg.rows:test'"]``;
        empty when the config runs no code.
    """
    found = []
    for key, src in _sources(cfg, ""):
        if src.kind == "python":
            where = f" in {src.path}" if src.path else ""
            found.append(f"{key} calls {src.function!r}{where}")
    return found


def require_trusted(cfg: BaseModel, trust_code: bool, *, what: str, command: str) -> None:
    """Refuse a stored config that runs Python code unless ``trust_code``.

    Args:
        what: the config, for the message (``"the config of run 1a2b"``).
        command: the command line to run instead (``"graft reproduce 1a2b --trust-code"``).

    Raises:
        UntrustedCodeError: ``cfg`` has a source of kind ``python`` and ``trust_code`` is false.
    """
    found = code_sources(cfg)
    if found and not trust_code:
        raise UntrustedCodeError(
            f"{what[:1].upper()}{what[1:]} runs Python code to read its data: {'; '.join(found)}. That code was "
            f"stored with the config, not written for this command; read it, and if you trust it add --trust-code "
            f"({command}; in Python, trust_code=True)."
        )
