"""Vocabulary: an ordered token list with special tokens at fixed low indices, saved as `vocab.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from app.errors import DataError, ModelFolderError


@dataclass(frozen=True)
class Vocabulary:
    """Token i is `tokens[i]`; the first `n_special` tokens are special (e.g. <pad>, <bos>, <eos>).

    Tokens are strings so a vocabulary round-trips through JSON exactly; a codec decides what they mean.
    """

    tokens: tuple[str, ...]
    n_special: int = 0
    kind: str = "generic"

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            dup = sorted({t for t in self.tokens if self.tokens.count(t) > 1})
            raise DataError(f"vocabulary has duplicate tokens: {dup}")
        if not 0 <= self.n_special <= len(self.tokens):
            raise DataError(f"n_special={self.n_special} outside 0..{len(self.tokens)}")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @property
    def size(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index  # type: ignore[attr-defined]

    def id(self, token: str) -> int:
        try:
            return self._index[token]  # type: ignore[attr-defined]
        except KeyError:
            raise DataError(f"token {token!r} is not in the vocabulary ({self.describe()})") from None

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Token strings -> int32 ids, shape (len,)."""
        return np.array([self.id(t) for t in tokens], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    def describe(self, limit: int = 80) -> str:
        shown = " ".join(repr(t)[1:-1] for t in self.tokens[self.n_special:])
        if len(shown) > limit:
            shown = shown[:limit] + " ..."
        return f"{self.size} tokens: {shown}"

    # --- persistence -------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"kind": self.kind, "n_special": self.n_special, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict) -> "Vocabulary":
        try:
            tokens, n_special, kind = data["tokens"], data["n_special"], data["kind"]
            if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
                bad = [t for t in tokens if not isinstance(t, str)][:3] if isinstance(tokens, list) else tokens
                raise TypeError(f"tokens must be a list of strings, found {bad!r}")
            if isinstance(n_special, bool) or not isinstance(n_special, int):
                raise TypeError(f"n_special must be a whole number, got {n_special!r}")
            if not isinstance(kind, str):
                raise TypeError(f"kind must be a string, got {kind!r}")
            return cls(tokens=tuple(tokens), n_special=n_special, kind=kind)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFolderError(f"vocab.json is malformed ({exc}); expected keys kind, n_special, tokens") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ModelFolderError(f"{path}: not valid JSON ({exc})") from None
        except UnicodeDecodeError as exc:
            raise ModelFolderError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ModelFolderError(f"{path}: cannot be read ({exc.strerror})") from None


def one_hot(ids: np.ndarray, depth: int, dtype=np.float32) -> np.ndarray:
    """ids (...,) int -> one-hot (..., depth). An id of -1 gives an all-zero row (the course's x0 = zeros)."""
    ids = np.asarray(ids)
    out = np.zeros(ids.shape + (depth,), dtype=dtype)
    valid = ids >= 0
    out[valid, ids[valid]] = 1
    return out


def pad_sequences(seqs: Sequence[np.ndarray], pad_id: int, length: int | None = None) -> np.ndarray:
    """List of 1-D id arrays -> (batch, length) int32, padded at the end with `pad_id` (longer ones truncated)."""
    length = max((len(s) for s in seqs), default=0) if length is None else length
    out = np.full((len(seqs), length), pad_id, dtype=np.int32)
    for i, s in enumerate(seqs):
        s = np.asarray(s)[:length]
        out[i, : len(s)] = s
    return out


def shift_xy(seqs: Sequence[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sequences [t0, t1, ..., tn] -> X = [t0..t(n-1)], Y = [t1..tn] (Y is X shifted by one step), padded.

    Returns X (batch, time) int32, Y (batch, time) int32 and weights (batch, time) float32 that are 1 on real
    steps and 0 on padding, so padding never counts in the loss.
    """
    xs = [np.asarray(s)[:-1] for s in seqs]
    ys = [np.asarray(s)[1:] for s in seqs]
    x = pad_sequences(xs, pad_id)
    y = pad_sequences(ys, pad_id)
    lengths = np.array([len(s) for s in ys])
    w = (np.arange(y.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
    return x, y, w
