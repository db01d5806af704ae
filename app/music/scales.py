"""Key/scale names -> the set of allowed pitch classes (0 = C ... 11 = B), for constraining generated note-ons.

Accepted names (case-insensitive, spaces/underscores/hyphens between tonic and mode optional):
  tonic  C D E F G A B, optionally followed by # or b (C#, Db, F#, Bb ...)
  mode   (none) or major/maj/ionian, m/min/minor/aeolian, dorian, phrygian, lydian, mixolydian, locrian,
         harmonic-minor, melodic-minor, pentatonic/major-pentatonic, minor-pentatonic, blues, chromatic
  examples: "C", "Am", "A minor", "D dorian", "G mixolydian", "Eb", "F# minor-pentatonic", "chromatic".
"""

from __future__ import annotations

import re

import numpy as np

from app.errors import OptionError

TONICS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "harmonic-minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic-minor": (0, 2, 3, 5, 7, 9, 11),
    "major-pentatonic": (0, 2, 4, 7, 9),
    "minor-pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
ALIASES = {"": "major", "maj": "major", "ionian": "major", "m": "minor", "min": "minor", "aeolian": "minor",
           "pentatonic": "major-pentatonic", "harmonicminor": "harmonic-minor", "melodicminor": "melodic-minor",
           "majorpentatonic": "major-pentatonic", "minorpentatonic": "minor-pentatonic"}
_KEY_RE = re.compile(r"^([a-g])([#b]?)[\s_-]*([a-z\s_-]*)$")


def parse_key(name: str) -> tuple[int, str]:
    """'F# minor' -> (6, 'minor'). Raises OptionError naming the accepted forms."""
    raw = str(name).strip()
    text = raw.lower()
    if text == "chromatic":
        return 0, "chromatic"
    m = _KEY_RE.match(text)
    mode = None
    if m:
        tonic = (TONICS[m.group(1)] + {"": 0, "#": 1, "b": -1}[m.group(2)]) % 12
        mode_text = re.sub(r"[\s_]+", "-", m.group(3).strip())
        mode = mode_text if mode_text in MODES else ALIASES.get(mode_text.replace("-", ""))
    if not m or mode is None:
        raise OptionError(f"unknown key {raw!r}; expected a tonic A-G with optional # or b and an optional mode "
                          f"({', '.join(['major', 'minor (or m)', *[k for k in MODES if k not in ('major', 'minor')]])})"
                          f", e.g. C, Am, 'D dorian', Bb, chromatic")
    return tonic, mode


# Modes whose home in a key-normalised corpus (`music corpus --transpose C`: C major / A minor) is A, not C.
MINOR_MODES = frozenset({"minor", "dorian", "phrygian", "locrian", "harmonic-minor", "melodic-minor",
                         "minor-pentatonic", "blues"})


def home_key(name: str) -> tuple[str, int]:
    """For a model trained on pieces transposed to C major / A minor: (the key to sample in, in the model's own
    keys, and the semitones (-5..+6) from it to `name`). The mode is kept and moved onto C (major-like modes) or A
    (minor-like modes): 'G' -> ('C major', -5), 'Em' -> ('A minor', -5), 'D dorian' -> ('A dorian', 5);
    'chromatic' -> ('chromatic', 0)."""
    tonic, mode = parse_key(name)
    if mode == "chromatic":
        return "chromatic", 0
    home, letter = (9, "A") if mode in MINOR_MODES else (0, "C")
    shift = (tonic - home) % 12
    return f"{letter} {mode}", shift - 12 if shift > 6 else shift


def pitch_classes(name: str) -> frozenset[int]:
    """Allowed pitch classes of key `name`, e.g. 'G' -> {7, 9, 11, 0, 2, 4, 6}."""
    tonic, mode = parse_key(name)
    return frozenset((tonic + i) % 12 for i in MODES[mode])


def pitch_mask(name: str | None, pitches: np.ndarray) -> np.ndarray:
    """Bool mask over `pitches` (MIDI numbers; negative = not a note, always allowed): True where allowed."""
    pitches = np.asarray(pitches)
    if name is None:
        return np.ones(pitches.shape, bool)
    pcs = np.array(sorted(pitch_classes(name)))
    return (pitches < 0) | np.isin(pitches % 12, pcs)
