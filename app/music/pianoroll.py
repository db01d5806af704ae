"""Piano-roll PNG of a melody (matplotlib, Agg backend: no display needed).

x axis: time in quarter notes with bar lines; y axis: MIDI pitch with note names on the C rows; one bar per note.
A primer (if any) is drawn in grey and the generated continuation in blue.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from app.core.outputs import atomic_write

NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(p: int) -> str:
    return f"{NAMES[p % 12]}{p // 12 - 1}"


def render_png(notes: Sequence[tuple[int, float, float]], path: str | Path, *, beats_per_bar: float = 4.0,
               primer_end: float = 0.0, title: str = "") -> Path:
    """notes: (pitch, start, end) in quarter notes. Notes starting before `primer_end` are the primer."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    end = max((e for _, _, e in notes), default=beats_per_bar)
    lo = min((p for p, _, _ in notes), default=60) - 2
    hi = max((p for p, _, _ in notes), default=72) + 2
    fig = Figure(figsize=(min(4 + end / 4, 24), 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    # one collection for all notes (one broken_barh per note cost ~10 ms a note in a cold process)
    from matplotlib.collections import PolyCollection

    boxes = [[(s, p - 0.4), (s, p + 0.4), (s + w, p + 0.4), (s + w, p - 0.4)]
             for p, s, w in ((p, s, max(e - s, 0.05)) for p, s, e in notes)]
    ax.add_collection(PolyCollection(boxes, facecolors=["#999999" if s < primer_end else "#2a6fdb"
                                                        for _, s, _ in notes], edgecolors="none"))
    bar = 0.0
    while bar <= end:
        ax.axvline(bar, color="#cccccc", lw=0.8, zorder=0)
        bar += beats_per_bar
    if primer_end > 0:
        ax.axvline(primer_end, color="#dd4444", lw=1.2, ls="--", zorder=0)
    ticks = [p for p in range(lo, hi + 1) if p % 12 == 0] or [lo]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks])
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, end)
    ax.set_xlabel("quarter notes")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write(path, buf.getvalue())
