"""`python -m app music corpus`: build (or reuse) an encoded melody corpus and print its summary.

Thin layer: parses options into an ExtractConfig and calls `app.music.corpus.build_corpus`. music21, pretty_midi
and tqdm are imported only when the command runs, so `python -m app --help` stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from app.core.options import DefaultsHelpFormatter

DEFAULT_SOURCES = ("music21:oneills1850", "music21:airdsAirs", "music21:ryansMammoth")  # = sources.DEFAULT_SOURCES


def _track(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value


def register(sub) -> None:
    p = sub.add_parser(
        "corpus", help="build an encoded melody corpus from MIDI/ABC/MusicXML files",
        description="Read music files, extract one melody per piece, encode it as tokens and save a cached "
                    "corpus with report.json. With no --source: O'Neill's 1850, Aird's Airs and Ryan's Mammoth "
                    "Collection from music21's bundled (public-domain) corpus.",
        formatter_class=DefaultsHelpFormatter)
    p.add_argument("--source", action="append", metavar="SRC",
                   help="folder (recursive), music file, or music21:COLLECTION; repeat for several "
                        f"(default: {' '.join(DEFAULT_SOURCES)})")
    p.add_argument("--out", default=None,
                   help="corpus folder to write (default: data/corpora/default for the default sources, else "
                        "data/corpora/<source name>)")
    p.add_argument("--steps-per-quarter", type=int, default=4, help="grid steps per quarter note")
    p.add_argument("--mode", choices=("melody", "poly"), default="melody",
                   help="melody: one line per piece (the melody track, chords cut to the top note); poly: every "
                        "pitched track kept whole, chords included (Polyphony-RNN tokens, app/music/polycodec.py)")
    p.add_argument("--drums", action="store_true", help="poly mode: keep drum tracks too (as their GM key numbers)")
    p.add_argument("--min-pitch", type=int, default=None,
                   help=f"lowest MIDI pitch kept (default {POLY_RANGE['melody'][0]} in melody mode, "
                        f"{POLY_RANGE['poly'][0]} in poly mode)")
    p.add_argument("--max-pitch", type=int, default=None,
                   help=f"highest MIDI pitch kept (default {POLY_RANGE['melody'][1]} in melody mode, "
                        f"{POLY_RANGE['poly'][1]} in poly mode)")
    p.add_argument("--out-of-range", choices=("clamp", "drop"), default="clamp",
                   help="clamp: move notes by octaves into range; drop: remove them")
    p.add_argument("--transpose", choices=("none", "C"), default="none",
                   help="C: transpose every piece to C major / A minor")
    p.add_argument("--augment", type=int, default=0, metavar="K",
                   help="add training copies transposed by -K..+K semitones")
    p.add_argument("--min-notes", type=int, default=8, help="drop segments with fewer notes")
    p.add_argument("--split-silence", type=float, default=4.0, metavar="QUARTERS",
                   help="split pieces at silences this long (0 = never)")
    p.add_argument("--melody-track", type=_track, default=None, metavar="INDEX|NAME",
                   help="melody track by index or name (default: automatic, see app/music/melody.py)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="fraction of pieces for validation")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--no-cache", action="store_true", help="parse every file again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


CORPORA = "data/corpora"
POLY_RANGE = {"melody": (48, 96), "poly": (21, 108)}  # default pitch range per --mode (poly: the piano's keys)
DEFAULT_OUT = CORPORA + "/default"


def _source_name(src: str) -> str:
    """music21:bach -> bach, path/to/tunes/ -> tunes, a/b/jig.abc -> jig."""
    name = src.split(":", 1)[1] if src.startswith("music21:") else Path(src.rstrip("/\\") or ".").resolve().name
    name = Path(name).stem if "." in name else name
    return re.sub(r"[^A-Za-z0-9_+-]+", "-", name).strip("-.") or "corpus"


def default_out(sources: Sequence[str] | None) -> str:
    """Where a build goes without --out: the shipped default corpus only for the default sources, otherwise a
    folder named after the sources (so a user's corpus never overwrites data/corpora/default)."""
    if not sources or tuple(sources) == DEFAULT_SOURCES:
        return DEFAULT_OUT
    name = "+".join(dict.fromkeys(_source_name(s) for s in sources))
    return f"{CORPORA}/{name[:60].rstrip('+-') or 'corpus'}"


def check_out(out: str, sources: Sequence[str] | None) -> str:
    """Only the default sources are built into the default corpus folder (its report.json is in git)."""
    from app.errors import OptionError

    if sources and tuple(sources) != DEFAULT_SOURCES and str(out).strip() and \
            Path(out).resolve() == Path(DEFAULT_OUT).resolve():
        raise OptionError(f"--out {out} is the default corpus, built only from the default sources; choose "
                          f"another folder, e.g. --out {default_out(sources)}")
    return out


def run(args) -> int:
    from app.music.corpus import build_corpus, format_summary
    from app.music.melody import ExtractConfig

    from app.errors import OptionError

    if args.drums and args.mode != "poly":
        raise OptionError("--drums keeps drum tracks in poly mode only; add --mode poly (melody mode drops drums)")
    if args.melody_track is not None and args.mode == "poly":
        raise OptionError("--melody-track chooses the one track of melody mode; poly mode keeps every track")
    lo, hi = POLY_RANGE[args.mode]
    config = ExtractConfig(steps_per_quarter=args.steps_per_quarter,
                           min_pitch=lo if args.min_pitch is None else args.min_pitch,
                           max_pitch=hi if args.max_pitch is None else args.max_pitch,
                           out_of_range=args.out_of_range, transpose=args.transpose,
                           augment=args.augment, min_notes=args.min_notes, split_silence=args.split_silence,
                           melody_track=args.melody_track, mode=args.mode, drums=args.drums)
    out = check_out(default_out(args.source) if args.out is None else args.out, args.source)
    result = build_corpus(args.source or DEFAULT_SOURCES, out, config, val_fraction=args.val_fraction,
                          seed=args.seed, jobs=args.jobs, progress=not args.quiet, use_cache=not args.no_cache)
    print(format_summary(result))
    return 0
