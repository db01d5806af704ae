"""Each setting declared once: a dataclass field whose metadata carries its help text and bounds.

    temperature: float = opt(1.0, "> 0; lower is safer, higher is wilder", lo=0, lo_open=True, hi=100)

From that one declaration come
  * the validation: `validate(self)` in the dataclass's __post_init__ checks every bounded field (a number must
    be finite and in range, a choice one of the allowed values; None passes when the default is None);
  * the command-line flag: `add_dataclass_args(parser, cls)` adds `--temperature` (type, help, choices and the
    default shown once) and `from_args(cls, args, base)` builds the dataclass from the flags the user gave;
  * the web control's range: `ui_range(cls, "temperature")` -> (lo, hi, step).
Metadata keys: help, lo, hi, lo_open, hi_open, choices (a tuple or a function returning one, e.g. the cell
registry's names), flag (flag names, default "--field-name"), show_default (the default as shown in --help), cli
(False: no flag), ui ((lo, hi, step) of a web slider when narrower than the bounds; see `ui_range`), label (the
name used in error messages, default the field name with dashes).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any, Callable, TypeVar

from app.core.config import check_choice, check_range
from app.errors import OptionError

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def opt(default: Any = _MISSING, help: str = "", *, default_factory: Callable[[], Any] | Any = _MISSING,
        lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
        choices: tuple | Callable[[], tuple] | None = None, flag: tuple[str, ...] | None = None,
        cli: bool = True, show_default: str | None = None, ui: tuple[float, float, float] | None = None,
        label: str | None = None) -> Any:
    """A dataclass field with its help text and bounds in the metadata (see the module docstring)."""
    meta = {"help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": choices,
            "flag": flag, "cli": cli, "show_default": show_default, "ui": ui, "label": label}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def choices_of(f: dataclasses.Field) -> tuple | None:
    c = f.metadata.get("choices")
    return tuple(c()) if callable(c) else c


def validate(obj: Any) -> None:
    """Check every field of dataclass `obj` against its metadata; raises OptionError naming the option."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None or "help" not in f.metadata:
            continue
        name = f.metadata.get("label") or f.name.replace("_", "-")
        choices = choices_of(f)
        if choices is not None:
            check_choice(name, value, choices)
        lo, hi = f.metadata["lo"], f.metadata["hi"]
        if lo is None and hi is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise OptionError(f"{name} must be a finite number, got {value!r}")
        if _field_type(f) is int and int(value) != value:
            raise OptionError(f"{name} must be a whole number, got {value!r}")
        check_range(name, value, lo, hi, lo_open=f.metadata["lo_open"], hi_open=f.metadata["hi_open"])


def bounds(cls: type, name: str) -> tuple[float | None, float | None]:
    """(lo, hi) of a field: the values validation accepts."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.metadata.get("lo"), f.metadata.get("hi")


def ui_range(cls: type, name: str) -> tuple[float, float, float]:
    """(lo, hi, step) for a web slider: the field's `ui` metadata (a useful sub-range), else its bounds."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.metadata.get("ui"):
        return f.metadata["ui"]
    lo, hi = bounds(cls, name)
    if lo is None or hi is None:
        raise OptionError(f"{cls.__name__}.{name} has no range for a slider")
    return lo, hi, 1 if _field_type(f) is int else (hi - lo) / 100


def _field_type(f: dataclasses.Field) -> type:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for name, py in (("bool", bool), ("int", int), ("float", float)):
        if t.replace(" ", "").split("|")[0] == name:
            return py
    return str


def _flags(f: dataclasses.Field) -> tuple[str, ...]:
    return f.metadata.get("flag") or ("--" + f.name.replace("_", "-"),)


def add_dataclass_args(parser: argparse.ArgumentParser | Any, cls: type, defaults: Any = None,
                       skip: tuple[str, ...] = (), default_label: str = "default") -> None:
    """Add one flag per field of `cls` that has help metadata. The flag's argparse default is None (so
    `from_args` knows what was given); the help shows the effective default from `defaults` (an instance) once."""
    defaults = defaults if defaults is not None else _try_default(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or "help" not in f.metadata or not f.metadata["cli"]:
            continue
        typ = _field_type(f)
        help_text = f.metadata["help"]
        shown = f.metadata.get("show_default")
        if shown is None and defaults is not None:
            value = getattr(defaults, f.name)
            shown = None if value is None or value is False else str(value)
        if shown:
            help_text = f"{help_text} ({default_label}: {shown})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text.replace("%", "%%")}
        if typ is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = typ
            choices = choices_of(f)
            if choices is not None:
                kwargs["choices"] = choices
            elif typ in (int, float):
                kwargs["metavar"] = f.name.upper()
        parser.add_argument(*_flags(f), **kwargs)


def _try_default(cls: type) -> Any:
    try:
        return cls()
    except TypeError:
        return None


def given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of `cls` the user set on the command line (flags left at None or False are not given)."""
    out = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None and v is not False:
            out[f.name] = v
    return out


def from_args(cls: type[T], args: argparse.Namespace, base: T | None = None, **extra: Any) -> T:
    """`base` (default: cls()) with the fields the user gave on the command line replaced (validated)."""
    base = cls() if base is None else base
    return dataclasses.replace(base, **given(cls, args), **extra)


def parse_temperatures(text: str, flag: str = "--temperatures") -> tuple[float, ...]:
    """"0.8,1.0,1.2" -> (0.8, 1.0, 1.2); every value a finite number > 0, else OptionError."""
    try:
        temps = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise OptionError(f"{flag} must be numbers separated by commas, got {text!r}") from None
    if not temps or any(not (t > 0 and math.isfinite(t)) for t in temps):
        raise OptionError(f"{flag} must be finite numbers > 0 separated by commas, got {text!r}")
    return temps


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to a flag's help once: not when the help already states its default, nor for None."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False) or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)
