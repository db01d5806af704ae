"""Write a folder of real polyphonic keyboard and multi-part MIDI files from music21's bundled corpus (offline).

Run: .venv/bin/python bench/poly_folder.py OUT_FOLDER
Each score listed in WORKS is parsed by music21 and written with its own MIDI writer (one track per part, chords
kept); a file that already exists is kept (so a second run is instant). Used by bench/poly.py (issue 14,
acceptance 1): keyboard works (piano sonatas, rags, mazurkas, polonaises, songs with piano) and multi-part pieces
(string quartets).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

KEYBOARD = ["chopin/mazurka06-2.krn", "cpebach/h186.mxl", "joplin/maple_leaf_rag.mxl", "mozart/k545",
            "schumann_clara/polonaise_op1n1.mxl", "schumann_clara/polonaise_op1n2.mxl",
            "schumann_clara/polonaise_op1n3.mxl", "schumann_clara/polonaise_op1n4.mxl",
            "schubert/Lindenbaum.xml", "schumann_robert/dichterliebe_no2.xml", "liliuokalani/aloha_oe.mxl",
            "schumann_clara/opus17/movement3.xml"]
MULTIPART = ["mozart/k155/movement1.mxl", "mozart/k156/movement1.mxl", "haydn/opus1no1/movement1.mxl",
             "haydn/opus74no1/movement1.mxl", "beethoven/opus18no1/movement2.mxl"]
WORKS = KEYBOARD + MULTIPART


def main(out: str) -> int:
    from music21 import corpus

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for work in WORKS:
        dest = folder / (("keyboard-" if work in KEYBOARD else "parts-") + work.replace("/", "_").rsplit(".", 1)[0]
                         + ".mid")
        if dest.exists():
            continue
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = corpus.parse(work)
            try:
                score.write("midi", fp=str(dest))
            except Exception as exc:  # music21 refuses malformed repeats: write the score in written order
                print(f"{work}: {type(exc).__name__}; writing it without repeat expansion", flush=True)
                from music21 import repeat

                for rb in list(score.recurse().getElementsByClass((repeat.RepeatMark, "Repeat"))):
                    rb.activeSite.remove(rb)
                for m in score.recurse().getElementsByClass("Measure"):
                    m.leftBarline = None
                    m.rightBarline = None
                score.write("midi", fp=str(dest))
        print(f"{dest.name}: {len(score.parts)} parts, {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "outputs/poly-midi"))
