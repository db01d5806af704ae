"""Which files `music generate` writes per melody (declared once: the flags, their validation and help).

Default `mid,wav,png,abc,svg`: the MIDI file (always written: every other format is made from the same melody), a
WAV to hear it, the piano roll, the ABC tune folk players read, print (abcm2ps) and paste into tune sites, and the
engraved score (.svg, verovio) to look at. MusicXML (for notation programs such as MuseScore) is one flag away:
it adds nothing a reader can see that the SVG does not show, so it is not written unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.options import opt, validate
from app.errors import OptionError

FORMATS = ("mid", "wav", "png", "abc", "musicxml", "svg")
DEFAULT_FORMATS = "mid,wav,png,abc,svg"


def parse_formats(text: str) -> tuple[str, ...]:
    """"mid,abc" -> ("mid", "abc") in FORMATS order; "mid" is always included. OptionError for unknown names."""
    names = [t.strip().lower().lstrip(".") for t in str(text).split(",") if t.strip()]
    names = ["musicxml" if n in ("xml", "mxl") else "mid" if n == "midi" else n for n in names]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise OptionError(f"--formats {text!r}: unknown format(s) {', '.join(bad) or '(none given)'}; choose "
                          f"from {','.join(FORMATS)} separated by commas, e.g. {DEFAULT_FORMATS}")
    chosen = set(names) | {"mid"}
    return tuple(f for f in FORMATS if f in chosen)


@dataclass(frozen=True)
class OutputFormats:
    """The files per melody and how the score shows repeats."""

    formats: str = opt(DEFAULT_FORMATS, "files per melody, from mid,wav,png,abc,musicxml,svg separated by commas "
                                        "(.mid is always written)", flag=("--formats",))
    no_fold: bool = opt(False, "write an exactly repeated 4-/8-bar section out in full in the ABC/MusicXML/SVG score "
                               "(default: once between repeat signs; the MIDI and WAV always play it in full)",
                        flag=("--no-fold",))

    def __post_init__(self) -> None:
        validate(self)
        parse_formats(self.formats)

    @property
    def chosen(self) -> tuple[str, ...]:
        return parse_formats(self.formats)

    @property
    def scores(self) -> tuple[str, ...]:
        """The score formats among the chosen ones (abc, musicxml, svg)."""
        return tuple(f for f in self.chosen if f in ("abc", "musicxml", "svg"))
