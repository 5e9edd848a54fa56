"""Command-line flags taken from a config dataclass's fields (as litgpt does): each field is declared once, with its
help in `opt(..., help=...)`, and `add_flags` turns it into an argparse flag.

The flag's type comes from the field's annotation (`int`, `float`, `str`, `Path`, `X | None`, `list[X]`,
`tuple[X, ...]`); a boolean defaulting to True becomes `--no-<name>`. Metadata overrides what an annotation cannot
say: `flag` (another name), `type` (a parsing function), `append` (repeatable), `choices`, `cli_default` (the
command's default when it differs from the library's) and `cli=False` (not a flag).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

SCALARS = (int, float, str, Path)


def opt(default: Any = dataclasses.MISSING, *, help: str, **cli: Any) -> Any:
    """A dataclass field with its flag's help (and any `flag`, `type`, `append`, `choices`, `cli_default`, `cli`)."""
    meta = {"help": help, **cli}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _parts(hint: Any) -> tuple[Any, Any, int | str | None]:
    """(outer kind, element type, nargs) of an annotation, with None dropped from unions."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        scalar = [a for a in args if a in SCALARS or a is bool]
        return _parts(scalar[0] if scalar else args[0])
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        fixed = origin is tuple and args and Ellipsis not in args
        return origin, args[0], (len(args) if fixed else "+")
    return hint, hint, None


def _hint(cls: type, f: dataclasses.Field) -> Any:
    """A field's annotation as a type; a name imported only for type checking (e.g. `ImageBind`) reads as str."""
    if not isinstance(f.type, str):
        return f.type
    try:
        return eval(f.type, vars(sys.modules[cls.__module__]))  # noqa: S307 - the module's own annotation
    except NameError:
        return str


def _default(f: dataclasses.Field) -> Any:
    if "cli_default" in f.metadata:
        return f.metadata["cli_default"]
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of dataclass `cls` that has help metadata (see the module docstring)."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or meta.get("cli") is False:
            continue
        name = "--" + meta.get("flag", f.name).replace("_", "-")
        kw: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        outer, elem, nargs = _parts(_hint(cls, f))
        default = _default(f)
        if outer is bool:
            if default is True:
                name = "--no-" + meta.get("flag", f.name).replace("_", "-")
            kw.update(action="store_const", const=not bool(default), default=default)
        else:
            kw["type"] = meta.get("type", elem if elem in SCALARS else str)
            kw["metavar"] = meta.get("flag", f.name).upper()
            if meta.get("append"):
                kw["action"] = "append"
            elif nargs is not None:
                kw["nargs"] = nargs
            if "choices" in meta:
                kw["choices"] = meta["choices"]
            if default is dataclasses.MISSING:
                kw["required"] = True
            else:
                kw["default"] = None if meta.get("append") else default
        parser.add_argument(name, **kw)


def from_flags(cls: type, args: argparse.Namespace) -> Any:
    """An instance of `cls` from parsed flags (fields that are not flags keep their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in names}
    for f in dataclasses.fields(cls):  # a repeatable flag given no times: the field's own default
        if f.metadata.get("append") and given.get(f.name) is None:
            given.pop(f.name, None)
    return cls(**given)
