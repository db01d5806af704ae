"""Engraving with verovio (a notation library): MusicXML text -> SVG, one page wide enough for the whole melody.

Verovio engraves the MusicXML that app.music.score writes (clef, key and time signature on every system, ties,
accidentals, repeat signs). One toolkit is made per process and reused (its creation loads the music fonts).
`measure_count(svg)` counts verovio's `<g class="measure">` groups, the check that each bar of the melody has one.
"""

from __future__ import annotations

import re
import threading

from app.errors import DataError

_TOOLKIT = None
_LOCK = threading.Lock()  # a verovio toolkit is not thread safe; the web page may engrave from several threads
OPTIONS = {"pageWidth": 2100, "pageHeight": 60000, "adjustPageHeight": True, "scale": 40, "footer": "none",
           "header": "auto", "breaks": "auto", "svgViewBox": True, "svgHtml5": True}


def available() -> bool:
    """True if the verovio package can be imported."""
    try:
        import verovio  # noqa: F401
    except ImportError:
        return False
    return True


def _toolkit():
    global _TOOLKIT
    if _TOOLKIT is None:
        try:
            import verovio
        except ImportError:
            raise DataError("engraving a score (.svg) needs the verovio package: pip install verovio "
                            "(it is in requirements.txt)") from None
        verovio.enableLog(verovio.LOG_OFF) if hasattr(verovio, "enableLog") else None
        tk = verovio.toolkit()
        tk.setOptions(OPTIONS)
        _TOOLKIT = tk
    return _TOOLKIT


def svg_from_musicxml(text: str) -> str:
    """MusicXML text -> SVG text of the whole score (all pages joined into one page: the page is tall enough)."""
    with _LOCK:
        tk = _toolkit()
        if not tk.loadData(text):
            raise DataError("verovio could not read the MusicXML it was given")
        pages = tk.getPageCount()
        if pages != 1:
            raise DataError(f"the score took {pages} pages; expected one tall page")
        return tk.renderToSVG(1)


def measure_count(svg: str) -> int:
    """Number of measures verovio drew in `svg`."""
    return len(re.findall(r'<g [^>]*class="measure[ "]', svg))


def svg_parts(svg: str) -> dict[str, int]:
    """How many of each score element verovio drew: measure, clef, keySig, meterSig, note, rest, tie, barLine."""
    return {name: len(re.findall(rf'<g [^>]*class="{name}[ "]', svg))
            for name in ("measure", "clef", "keySig", "meterSig", "note", "rest", "tie", "barLine")}
