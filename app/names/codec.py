"""Text codec for names: a names file -> normalised names -> token ids, and back.

Vocabulary layout (fixed low indices): 0 = <pad>, 1 = <bos> (start), 2 = "\n" (end of name, the course's EOS),
then the characters seen in the data, sorted. A name "abc" encodes to [<bos>, a, b, c, \n]; the model reads X =
[<bos>, a, b, c] and predicts Y = [a, b, c, \n] (the course layout: Y is X shifted by one step).
"""

from __future__ import annotations

import io
import itertools
import os
import random
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from app.core.vocab import Vocabulary, shift_xy
from app.errors import DataError

PAD, BOS, EOS = "<pad>", "<bos>", "\n"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (PAD, BOS, EOS)
MAX_NAME_CHARS = 64
MAX_NAMES_FILE_BYTES = 64 << 20  # a names file above this is refused before reading (dinos.txt is 19 KB)


def read_names(path: str | Path, *, lowercase: bool = True, max_bytes: int | None = None) -> list[str]:
    """Read one name per line (UTF-8), strip, optionally lower-case, drop blanks and duplicates (first kept).

    The file is streamed line by line and refused above `max_bytes` (default MAX_NAMES_FILE_BYTES) before reading,
    so a huge file is a clear error, never a MemoryError. Raises DataError for a missing/unreadable/binary/non-UTF-8
    file (naming the line), one that is not a regular file (a FIFO would block), or one with no usable lines.
    """
    max_bytes = MAX_NAMES_FILE_BYTES if max_bytes is None else max_bytes
    p = Path(path)
    if not p.exists():
        raise DataError(f"names file {str(p)!r} does not exist; pass a UTF-8 text file with one name per line")
    if p.is_dir():
        raise DataError(f"{str(p)!r} is a folder; pass a UTF-8 text file with one name per line")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise DataError(f"cannot read names file {str(p)!r}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"names file {str(p)!r} is not a regular file (a FIFO, device or socket); pass a UTF-8 "
                            f"text file with one name per line")
        if st.st_size > max_bytes:
            raise DataError(f"names file {str(p)!r} is {st.st_size:,} bytes; the limit is {max_bytes:,} bytes "
                            f"({max_bytes / 2**20:g} MiB); pass a smaller file (a few MB hold millions of names)")
        try:
            head = f.read(1 << 16)  # a binary file is told as such before its first line is decoded
            if b"\x00" in head:
                line = head[: head.index(b"\x00")].count(b"\n") + 1
                raise DataError(f"names file {str(p)!r} looks binary (NUL byte on line {line}); expected UTF-8 "
                                f"text")
            lines = itertools.chain(io.BytesIO(head + (f.readline() if head else b"")), f)
            return _parse_names(lines, p, lowercase, max_bytes)
        except OSError as exc:
            raise DataError(f"cannot read names file {str(p)!r}: {exc.strerror}") from None


def _parse_names(lines: Iterable[bytes], p: Path, lowercase: bool, max_bytes: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    total = 0
    any_text = False
    for lineno, line in enumerate(lines, start=1):
        total += len(line)
        if total > max_bytes:  # the file grew while we read it
            raise DataError(f"names file {str(p)!r} is larger than the limit of {max_bytes:,} bytes")
        if b"\x00" in line:
            raise DataError(f"names file {str(p)!r} looks binary (NUL byte on line {lineno}); expected UTF-8 text")
        any_text = any_text or bool(line.strip())
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"names file {str(p)!r} line {lineno} is not UTF-8 (byte {line[exc.start]:#04x} at "
                            f"column {exc.start + 1}); save the file as UTF-8") from None
        name = normalise(text, lowercase=lowercase)
        if name and name not in seen:
            seen.add(name)
            names.append(name)
    if not any_text:
        raise DataError(f"names file {str(p)!r} is empty; expected one name per line")
    if not names:
        raise DataError(f"names file {str(p)!r} has no usable lines (all blank or too long; max "
                        f"{MAX_NAME_CHARS} characters)")
    return names


def normalise(text: str, *, lowercase: bool = True) -> str:
    """Strip whitespace and control characters; lower-case by default; '' if unusable (blank or too long)."""
    name = "".join(ch for ch in text.strip() if ch.isprintable())
    if lowercase:
        name = name.lower()
    return name if 0 < len(name) <= MAX_NAME_CHARS else ""


def split_names(names: Sequence[str], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic train/validation split of de-duplicated names (same seed -> same split).

    The validation side gets round(val_fraction * n) names, at least 1 when n >= 2.
    """
    if len(set(names)) != len(names):
        raise DataError("split_names expects de-duplicated names (read_names does this)")
    order = list(names)
    random.Random(seed).shuffle(order)
    n_val = max(1, round(val_fraction * len(order))) if len(order) >= 2 else 0
    return order[n_val:], order[:n_val]


@dataclass(frozen=True)
class NameCodec:
    """names <-> token ids over a Vocabulary whose specials are (<pad>, <bos>, \\n)."""

    vocab: Vocabulary

    @classmethod
    def build(cls, names: Iterable[str]) -> "NameCodec":
        chars = sorted({ch for name in names for ch in name} - set(SPECIALS))
        return cls(Vocabulary(SPECIALS + tuple(chars), n_special=len(SPECIALS), kind="chars"))

    @property
    def alphabet(self) -> tuple[str, ...]:
        return self.vocab.tokens[self.vocab.n_special:]

    def check_text(self, text: str, what: str = "text") -> None:
        bad = sorted({ch for ch in text if ch not in self.vocab or ch in SPECIALS})
        if bad:
            raise DataError(f"{what} {text!r} has character(s) {', '.join(map(repr, bad))} that the model does "
                            f"not know; allowed: {''.join(self.alphabet)!r}")

    def encode(self, name: str) -> np.ndarray:
        """'abc' -> [<bos>, a, b, c, \\n] as int32 ids."""
        self.check_text(name, "name")
        return np.array([BOS_ID] + [self.vocab.id(ch) for ch in name] + [EOS_ID], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        """Inverse of encode: specials are dropped, decoding stops at the first end-of-name."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i >= self.vocab.n_special:
                out.append(self.vocab.tokens[i])
        return "".join(out)

    def xy(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training arrays: X, Y (batch, time) int32 padded with <pad>; W (batch, time) 1 on real steps."""
        return shift_xy([self.encode(n) for n in names], PAD_ID)
