"""Quality report of a polyphonic model (issue 14): polyphony features of generated pieces next to held-out ones.

Features per piece (notes (pitch, start, end) in grid steps over `steps` steps):
    sounding_per_step   mean number of notes sounding per step (silent steps count as 0)
    chord_sizes         histogram of the number of notes sounding at each non-silent step, sizes 1..MAX_CHORD
                        (the last bin holds MAX_CHORD and more), as shares
    voice_range         highest minus lowest pitch (semitones); also lowest and highest pitch
    in_scale_rate       share of notes in the scale of the piece's estimated key (app.music.features.in_scale_rate,
                        the melody report's feature, over every note)
    pitch_classes       histogram of the notes' pitch classes (each note counts once), as shares
Set figures: the mean of each scalar over pieces; histograms pooled over all notes / steps. Distances between
pitch-class histograms are Jensen-Shannon divergences in bits (app.core.metrics.js_divergence); "real vs real" is
held-out against the training pieces (the floor any generator is measured against).

`music report --model <poly model>` writes report.json and report.md with these figures for each temperature.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.metrics import js_divergence
from app.music.polycodec import piano_roll

MAX_CHORD = 8
MAX_BATCH = 64  # app.music.sampler.MAX_OUTPUTS


def piece_features(notes: Sequence[tuple[int, int, int]], steps: int) -> dict:
    """The features of one piece (module docstring); NaN/zeros for a piece without notes."""
    from app.music.features import in_scale_rate

    if not notes or steps <= 0:
        return {"sounding_per_step": 0.0, "chord_sizes": np.zeros(MAX_CHORD), "voice_range": float("nan"),
                "lowest": float("nan"), "highest": float("nan"), "in_scale_rate": float("nan"),
                "pitch_classes": np.zeros(12), "notes": 0, "steps": int(steps)}
    _, sounding = piano_roll(notes, steps)
    per_step = sounding.sum(axis=0)
    busy = per_step[per_step > 0]
    sizes = np.bincount(np.minimum(busy, MAX_CHORD) - 1, minlength=MAX_CHORD).astype(float)
    pitches = np.array([p for p, _, _ in notes])
    return {"sounding_per_step": float(per_step.mean()), "chord_sizes": sizes,
            "voice_range": float(pitches.max() - pitches.min()), "lowest": float(pitches.min()),
            "highest": float(pitches.max()), "in_scale_rate": in_scale_rate(list(notes)),
            "pitch_classes": np.bincount(pitches % 12, minlength=12).astype(float), "notes": int(len(notes)),
            "steps": int(steps)}


def set_features(pieces: Sequence[tuple[Sequence, int]]) -> dict:
    """Figures of a set of (notes, steps) pieces: scalar means and pooled histograms (shares)."""
    feats = [piece_features(n, s) for n, s in pieces]

    def mean(key):
        v = np.array([f[key] for f in feats], float)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else None

    sizes = np.sum([f["chord_sizes"] for f in feats], axis=0)
    pcs = np.sum([f["pitch_classes"] for f in feats], axis=0)
    return {"pieces": len(feats), "notes": int(sum(f["notes"] for f in feats)),
            "sounding_per_step": mean("sounding_per_step"), "voice_range": mean("voice_range"),
            "lowest": mean("lowest"), "highest": mean("highest"), "in_scale_rate": mean("in_scale_rate"),
            "chord_sizes": (sizes / max(sizes.sum(), 1)).round(4).tolist(),
            "pitch_classes": (pcs / max(pcs.sum(), 1)).round(5).tolist()}


def js_bits(a: dict, b: dict, key: str = "pitch_classes") -> float:
    return float(js_divergence(np.asarray(a[key], float), np.asarray(b[key], float)))


def compare(generated: dict, heldout: dict, train: dict) -> dict:
    """The issue's acceptance figures for one generated set (issue 14, acceptance 4)."""
    real_js = js_bits(heldout, train)
    gen_js = js_bits(generated, heldout)
    ratio = generated["sounding_per_step"] / heldout["sounding_per_step"] if heldout["sounding_per_step"] else None
    scale_gap = None if generated["in_scale_rate"] is None or heldout["in_scale_rate"] is None else \
        100 * (generated["in_scale_rate"] - heldout["in_scale_rate"])
    return {"sounding_ratio": ratio, "in_scale_points": scale_gap, "pitch_class_js_bits": gen_js,
            "real_vs_real_js_bits": real_js, "js_ratio": gen_js / real_js if real_js > 0 else None,
            "chord_size_js_bits": js_bits(generated, heldout, "chord_sizes"),
            "goals": {"sounding_within_30pct": ratio is not None and abs(ratio - 1) <= 0.30,
                      "in_scale_within_5_points": scale_gap is not None and abs(scale_gap) <= 5,
                      "pitch_class_js_within_1_5x": real_js > 0 and gen_js <= 1.5 * real_js}}


def corpus_pieces(corpus, which: str) -> list[tuple[list, int]]:
    """(notes, steps) of the corpus's original (not augmented) train or val pieces."""
    seqs, metas = (corpus.train, corpus.train_meta) if which == "train" else (corpus.val, corpus.val_meta)
    return [corpus.codec.decode_notes(s) for s, m in zip(seqs, metas) if m.get("shift", 0) == 0]


def build_report(gen, corpus, n: int = 200, temperatures: Sequence[float] = (1.0,), seed: int = 0,
                 bars: int = 16) -> dict:
    """Generate `n` pieces of `bars` bars per temperature and compare them with the held-out pieces."""
    heldout = set_features(corpus_pieces(corpus, "val"))
    train = set_features(corpus_pieces(corpus, "train"))
    rows = []
    for k, t in enumerate(temperatures):
        pieces = []
        for j, lo in enumerate(range(0, n, MAX_BATCH)):  # generate() draws at most MAX_BATCH pieces per call
            pieces += gen.generate(n=min(MAX_BATCH, n - lo), bars=bars, temperature=float(t),
                                   seed=(seed + k) * 1000 + j)
        feats = set_features([(p.notes(), p.steps) for p in pieces])
        rows.append({"temperature": float(t), "generated": feats, **compare(feats, heldout, train)})
    return {"model": str(gen.path), "corpus": str(corpus.path), "mode": "poly", "n": n, "bars": bars,
            "heldout": heldout, "train": train, "by_temperature": rows}


def to_markdown(report: dict) -> str:
    h = report["heldout"]
    lines = [f"# Polyphonic model report: {report['model']}", "",
             f"{report['n']} generated pieces of {report['bars']} bars per temperature; held-out: "
             f"{h['pieces']} pieces of {report['corpus']}.", "",
             "| set | notes sounding / step | in-scale | voice range | pitch-class JS vs held-out (bits) |",
             "|---|---|---|---|---|",
             f"| held-out | {h['sounding_per_step']:.2f} | {100 * h['in_scale_rate']:.1f} % | "
             f"{h['voice_range']:.1f} | {js_bits(h, report['train']):.4f} (training set) |"]
    for r in report["by_temperature"]:
        g = r["generated"]
        lines.append(f"| T={r['temperature']} | {g['sounding_per_step']:.2f} | {100 * g['in_scale_rate']:.1f} % | "
                     f"{g['voice_range']:.1f} | {r['pitch_class_js_bits']:.4f} |")
    lines += ["", "Chord sizes (share of sounding steps with 1..8+ notes): held-out "
              + " ".join(f"{x:.3f}" for x in h["chord_sizes"])]
    for r in report["by_temperature"]:
        lines.append(f"T={r['temperature']}: " + " ".join(f"{x:.3f}" for x in r["generated"]["chord_sizes"]))
    return "\n".join(lines) + "\n"


def run_report(model, corpus=None, n: int = 200, temperatures: Sequence[float] = (1.0,), seed: int = 0,
               out_dir: str | Path = "outputs/reports") -> tuple[Path, dict]:
    """Write report.json and report.md for a poly model to <out_dir>/<timestamp>-music-poly/."""
    from app.core.outputs import atomic_write, ensure_dir, new_folder, timestamp
    from app.music.corpus import corpus_for, load_corpus
    from app.music.generate import MelodyGenerator

    gen = MelodyGenerator.load(model)
    c = load_corpus(corpus_for(corpus, gen.card, progress=False))
    report = build_report(gen, c, n, temperatures, seed)
    folder = new_folder(ensure_dir(out_dir), f"{timestamp()}-music-poly")
    atomic_write(folder / "report.json", json.dumps(report, indent=1))
    atomic_write(folder / "report.md", to_markdown(report))
    return folder, report
