"""Small frozen-dataclass configs: validated on creation, unknown options are errors."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, TypeVar

from app.errors import OptionError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], *, what: str = "config") -> T:
    """Build dataclass `cls` from `data`; a key that is not a field raises OptionError naming the allowed keys."""
    if not isinstance(data, dict):
        raise OptionError(f"{what}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise OptionError(f"{what}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    return cls(**data)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise OptionError unless value is a finite number with lo <(=) value <(=) hi. Used by every config's
    __post_init__. NaN compares false with everything, so finiteness is checked first; a bool or a string (e.g.
    "four" read from a JSON file) is not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise OptionError(f"{name} must be a finite number, got {value!r}")
    bad = False
    if lo is not None:
        bad |= value <= lo if lo_open else value < lo
    if hi is not None:
        bad |= value >= hi if hi_open else value > hi
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise OptionError(f"{name} must be in {left}{lo_s}, {hi_s}{right}, got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise OptionError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
