"""Music quality report: how close generated melodies are to held-out real ones, how much they copy, with plots.

What is compared (all at fixed seeds, so a rerun gives the same figures):
  held-out   the corpus's validation pieces, split by piece into halves A and B (seeded shuffle).
  generated  n melodies per temperature, sampled from the model with no primer (seed `seed`, batches of at most 64
             with seeds seed, seed+1, ...). Melody k has the length of a piece of half A (A's lengths in a seeded
             order, repeated when n > |A|), so length-dependent features (pitch count, range, repetition) compare
             fairly.
  distance   for each feature (app.music.features) the distance generated vs B, next to the yardstick A vs B (real
             vs real, the same sizes when n = |A|): 1 - KDE overlap area for scalar features, Jensen-Shannon
             divergence in bits of the mean per-piece histogram for histogram features. ratio = distance /
             yardstick; 1 means "as close as another sample of real tunes is".
  copying    app.music.copying against the corpus's training pieces: share of 8-note pitch n-grams and of
             bar-aligned 4-bar phrases found in them, longest run of notes copied from one training piece. The same
             figures for half A (real tunes the model never saw) are the yardstick.
Bars: a generated melody uses the model's time signature (config codec.time_signature; a corpus of mixed meters
records its most common one), a real piece its own.

Outputs (`run_report`): <out_dir>/<timestamp>-music/report.json, report.md, features.png (scalar feature
histograms), histograms.png (pitch-class, interval and note-length histograms), distances.png (ratio per feature
and temperature), tradeoff.png (copying, in-scale rate and distance by temperature), pianorolls.png (real and
generated piano rolls side by side; the single rolls are in rolls/) and a few generated .mid files in examples/.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import update_card as update_card_file
from app.core.outputs import atomic_write, ensure_dir, timestamp, unique_stem
from app.errors import DataError, OptionError
from app.music.copying import TrainingIndex
from app.music.features import (FEATURES, HIST_FEATURES, SCALAR_FEATURES, UNITS, events_from_ids, mean_hist,
                                notes_of, set_distance, set_features, steps_per_bar)

TEMPERATURES = (0.8, 1.0, 1.2)
DEFAULT_N = 200
NGRAM_N = 8
BATCH = 64  # app.music.sampler.MAX_OUTPUTS
GOAL_RATIO = 1.5
GOAL_IN_SCALE_POINTS = 5.0
GOAL_NGRAM_COPY = 0.05
EXAMPLES = 3
ROLL_QUARTERS = 32  # piano rolls show the first 32 quarter notes


# --- inputs --------------------------------------------------------------------------------------------------------
@dataclass
class MusicModel:
    """What the report needs from a model: a numpy stepper, its codec and grid."""

    path: Path
    stepper: object
    codec: object  # app.music.codec.MelodyCodec
    steps_per_quarter: int = 4
    time_signature: tuple[int, int] = (4, 4)
    card: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "MusicModel":
        from app.core.folder import load_model_folder
        from app.music.codec import MelodyCodec
        from app.music.generate import model_grid

        folder = load_model_folder(path, domain="music")
        try:
            codec = MelodyCodec.from_vocab(folder.vocab)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
        spq, ts = model_grid(folder)
        from app.music.archs.base import stepper_for

        return cls(Path(path), stepper_for(folder, ts), codec, spq, ts, folder.card)

    @property
    def bar_steps(self) -> int:
        return steps_per_bar(self.steps_per_quarter, self.time_signature)


@dataclass
class RealSet:
    """Real pieces as event arrays with their bar lengths (steps) and names."""

    events: list[np.ndarray]
    bar_steps: list[int]
    names: list[str]


def real_set(corpus, pieces: Sequence[np.ndarray], metas: Sequence[dict]) -> RealSet:
    spq = corpus.steps_per_quarter
    return RealSet([events_from_ids(p, corpus.codec) for p in pieces],
                   [steps_per_bar(spq, m.get("time_signature") or (4, 4)) for m in metas],
                   [m.get("name", "") for m in metas])


def heldout_halves(corpus, seed: int = 0) -> tuple[RealSet, RealSet]:
    """The corpus's validation pieces split by piece name into halves A and B (seeded)."""
    names = sorted({m["name"] for m in corpus.val_meta})
    if len(names) < 2:
        raise DataError(f"corpus {corpus.path} has {len(names)} validation piece(s); the report needs at least 2 "
                        f"(rebuild it with a larger validation split)")
    order = np.random.default_rng(seed).permutation(len(names))
    in_a = {names[i] for i in order[: (len(names) + 1) // 2]}
    parts = {True: ([], []), False: ([], [])}
    for p, m in zip(corpus.val, corpus.val_meta):
        parts[m["name"] in in_a][0].append(p)
        parts[m["name"] in in_a][1].append(m)
    return real_set(corpus, *parts[True]), real_set(corpus, *parts[False])


def target_lengths(lengths: Sequence[int], n: int, seed: int = 0) -> np.ndarray:
    """n lengths drawn from `lengths` without replacement (a seeded permutation, repeated when n > len)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(lengths))
    return lengths[np.resize(order, n)]


def generate_melodies(model: MusicModel, lengths: Sequence[int], temperature: float, seed: int = 0
                      ) -> list[np.ndarray]:
    """One melody (token ids) per requested length, in the order given; batches of similar lengths."""
    from app.core.sampling import SamplingOptions
    from app.music.generate import note_pitches
    from app.music.sampler import MAX_STEPS, MelodyOptions, generate_ids

    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), MAX_STEPS)
    order = np.argsort(lengths, kind="stable")
    pitches = note_pitches(model.codec)
    out: list[np.ndarray | None] = [None] * len(lengths)
    for b, start in enumerate(range(0, len(order), BATCH)):
        idx = order[start:start + BATCH]
        opts = MelodyOptions(n=len(idx), steps=int(max(1, lengths[idx].max())),
                             sampling=SamplingOptions(temperature=float(temperature)), seed=seed + b)
        ids = generate_ids(model.stepper, pitches, opts)
        for row, i in zip(ids, idx):
            out[i] = row[:max(1, lengths[i])]
    return out


# --- the report ----------------------------------------------------------------------------------------------------
def _f(x) -> float | None:
    """JSON-safe float (None for NaN/inf)."""
    x = float(x)
    return x if np.isfinite(x) else None


def _means(feats: dict) -> dict:
    return {name: _f(np.nanmean(feats[name])) if np.isfinite(feats[name]).any() else None
            for name in SCALAR_FEATURES}


def _distances(feats: dict, ref: dict) -> dict:
    return {name: _f(set_distance(name, feats[name], ref[name])) for name in FEATURES}


def build_report(model: MusicModel, corpus, n: int = DEFAULT_N, temperatures: Sequence[float] = TEMPERATURES,
                 seed: int = 0, progress: bool = False) -> tuple[dict, dict]:
    """Everything of the report as JSON-able dict, and the samples/features the plots need."""
    if n < 1:
        raise OptionError(f"-n must be >= 1, got {n}")
    temps = [float(t) for t in temperatures]
    if not temps or any(not t > 0 for t in temps):
        raise OptionError(f"temperatures must be > 0, got {list(temperatures)}")
    spq = corpus.steps_per_quarter
    if spq != model.steps_per_quarter:
        raise OptionError(f"the model uses {model.steps_per_quarter} steps per quarter, corpus {corpus.path} "
                          f"{spq}; pass the corpus the model was trained on with --corpus")
    if not corpus.train:
        raise DataError(f"corpus {corpus.path} has no training pieces to check copying against")

    def say(msg):
        if progress:
            print(msg, file=sys.stderr, flush=True)

    half_a, half_b = heldout_halves(corpus, seed)
    feats_a = set_features(half_a.events, spq, half_a.bar_steps)
    feats_b = set_features(half_b.events, spq, half_b.bar_steps)
    feats_real = {k: np.concatenate([feats_a[k], feats_b[k]]) for k in feats_a}
    say(f"held-out: {len(half_a.events)} + {len(half_b.events)} pieces; indexing {len(corpus.train)} training "
        f"pieces")
    index = TrainingIndex([events_from_ids(p, corpus.codec) for p in corpus.train],
                          [m.get("name", "") for m in corpus.train_meta])
    bar = model.bar_steps
    copy_real = index.check(half_a.events, half_a.bar_steps, NGRAM_N)
    lengths = target_lengths([len(e) for e in half_a.events], n, seed)
    yard = _distances(feats_a, feats_b)
    rows, samples = [], {"real_a": half_a, "real_b": half_b, "features_real": feats_real, "generated": {},
                         "features": {}, "ids": {}}
    for t in temps:
        say(f"T = {t}: generating {n} melodies ({int(lengths.sum()):,} steps)")
        ids = generate_melodies(model, lengths, t, seed)
        events = [events_from_ids(row, model.codec) for row in ids]
        feats = set_features(events, spq, bar)
        dist = _distances(feats, feats_b)
        copy = index.check(events, bar, NGRAM_N)
        rows.append({"temperature": t, "melodies": n, "notes": int(feats["notes"].sum()),
                     "empty_melodies": int((feats["notes"] == 0).sum()),
                     "distances": dist,
                     "ratios": {k: _f(dist[k] / yard[k]) if dist[k] is not None and yard[k] else None
                                for k in FEATURES},
                     "means": _means(feats), "copy": copy.summary(),
                     "copy_per_melody": {"ngram_copy_rate": [_f(f / t_) if t_ else None for f, t_ in
                                                             zip(copy.ngram_found, copy.ngram_total)],
                                         "longest_run_notes": [int(x) for x in copy.longest_run]}})
        samples["generated"][t], samples["features"][t], samples["ids"][t] = events, feats, ids
    report = {
        "model": str(model.path), "corpus": str(corpus.path), "corpus_matches_model": corpus_matches(model, corpus),
        "samples_per_temperature": n, "seed": seed, "ngram_n": NGRAM_N, "steps_per_quarter": spq,
        "generated_time_signature": list(model.time_signature),
        "heldout": {"pieces": len(corpus.val), "half_a": len(half_a.events), "half_b": len(half_b.events),
                    "training_pieces": len(corpus.train),
                    "steps_median": float(np.median([len(e) for e in half_a.events + half_b.events]))},
        "units": {k: UNITS[k] for k in FEATURES},
        "distance_kind": {k: ("JS bits" if k in HIST_FEATURES else "1 - KDE overlap") for k in FEATURES},
        "real_vs_real": {"distances": yard, "means": _means(feats_real),
                         "copy": copy_real.summary()},
        "by_temperature": rows,
    }
    report["goals"] = goals(report)
    return report, samples


def corpus_matches(model: MusicModel, corpus) -> bool | None:
    """True when the corpus holds the pieces the model card records (token fingerprint of train + validation, as
    app.music.train writes it), None when the card does not say."""
    want = (model.card.get("corpus") or {}).get("tokens_sha256")
    if not want:
        return None
    from app.music.train import corpus_fingerprint

    return corpus_fingerprint(list(corpus.train) + list(corpus.val)) == want


def goals(report: dict, temperature: float = 1.0) -> dict | None:
    """Where the run stands against the issue's targets at `temperature` (targets, not assertions)."""
    row = next((r for r in report["by_temperature"] if r["temperature"] == temperature), None)
    if row is None:
        return None
    ratios = {k: v for k, v in row["ratios"].items() if v is not None}
    real_in = report["real_vs_real"]["means"]["in_scale_rate"]
    gen_in = row["means"]["in_scale_rate"]
    gap = None if real_in is None or gen_in is None else 100 * (gen_in - real_in)
    copy = row["copy"]["ngram_copy_rate"]
    return {"temperature": temperature,
            "distance_ratio_goal": GOAL_RATIO,
            "features_within_ratio": sorted(k for k, v in ratios.items() if v <= GOAL_RATIO),
            "features_over_ratio": sorted(k for k, v in ratios.items() if v > GOAL_RATIO),
            "in_scale_gap_points": _f(gap) if gap is not None else None,
            "in_scale_met": gap is not None and abs(gap) <= GOAL_IN_SCALE_POINTS,
            "ngram_copy_rate": copy,
            "ngram_copy_met": copy is not None and copy <= GOAL_NGRAM_COPY}


# --- plots ---------------------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return atomic_write(path, buf.getvalue())


def write_plots(report: dict, samples: dict, folder: Path) -> list[Path]:
    plt = _plt()
    paths = []
    temps = [r["temperature"] for r in report["by_temperature"]]
    real = samples["features_real"]

    # 1. scalar features: real histogram (filled) vs each temperature (outline)
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    for ax, name in zip(axes.ravel(), SCALAR_FEATURES):
        vals = [real[name]] + [samples["features"][t][name] for t in temps]
        finite = np.concatenate([v[np.isfinite(v)] for v in vals])
        if not len(finite):
            ax.set_visible(False)
            continue
        lo, hi = float(finite.min()), float(finite.max())
        integer = name in ("pitch_count", "pitch_range")
        bins = np.arange(lo - 0.5, hi + 1.5) if integer and hi - lo < 60 else np.linspace(lo, hi + 1e-9, 25)
        r = real[name][np.isfinite(real[name])]
        ax.hist(r, bins=bins, density=True, color="0.6", alpha=0.6, label="held-out real")
        for t in temps:
            g = samples["features"][t][name]
            ax.hist(g[np.isfinite(g)], bins=bins, density=True, histtype="step", linewidth=1.6, label=f"T = {t}")
        d = report["by_temperature"][temps.index(1.0) if 1.0 in temps else 0]
        ax.set_title(f"{name.replace('_', ' ')}\nratio {_fmt_ratio(d['ratios'][name])} at T = {d['temperature']}",
                     fontsize=10)
        ax.set_xlabel(UNITS[name])
    axes.ravel()[-1].axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    axes.ravel()[-1].legend(handles, labels, loc="center")
    fig.suptitle("Per-piece features: generated vs held-out real melodies")
    paths.append(_save(fig, folder / "features.png"))

    # 2. histogram features: mean per-piece histograms
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    xs = {"pitch_class_hist": (np.arange(12), ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]),
          "interval_hist": (np.arange(-12, 13), None)}
    for ax, name in zip(axes, HIST_FEATURES):
        m_real = mean_hist(real[name])
        x, labels = xs.get(name, (np.arange(1, len(m_real) + 1), None))
        ax.bar(x, m_real, color="0.6", alpha=0.6, label="held-out real")
        for t in temps:
            ax.plot(x, mean_hist(samples["features"][t][name]), "o-", ms=3, linewidth=1.4, label=f"T = {t}")
        if labels:
            ax.set_xticks(x, labels)
        if name == "note_length_hist":
            ax.set_xticks(x, [str(k) for k in x[:-1]] + [f">{x[-2]}"], fontsize=8)
        ax.set_xlabel(UNITS[name])
        ax.set_ylabel("mean share per piece")
        ax.set_title(name.replace("_", " "))
    axes[0].legend()
    fig.suptitle("Pitch classes, intervals and note lengths: generated vs held-out real")
    paths.append(_save(fig, folder / "histograms.png"))

    # 3. distance ratios per feature and temperature
    fig, ax = plt.subplots(figsize=(13, 4.8))
    width = 0.8 / max(1, len(temps))
    x = np.arange(len(FEATURES))
    for k, row in enumerate(report["by_temperature"]):
        vals = [row["ratios"][f] if row["ratios"][f] is not None else np.nan for f in FEATURES]
        ax.bar(x + (k - (len(temps) - 1) / 2) * width, vals, width, label=f"T = {row['temperature']}")
    ax.axhline(1.0, color="k", linewidth=1, label="real vs real")
    ax.axhline(GOAL_RATIO, color="C3", linestyle="--", linewidth=1, label=f"goal {GOAL_RATIO}x")
    ax.set_yscale("log")
    ax.set_xticks(x, [f.replace("_", "\n") for f in FEATURES], fontsize=8)
    ax.set_ylabel("distance / real-vs-real distance (log)")
    ax.set_title("Distance to held-out melodies relative to the real-vs-real yardstick (lower is closer)")
    ax.legend(fontsize=8, ncol=2)
    paths.append(_save(fig, folder / "distances.png"))

    # 4. trade-off by temperature
    rows = report["by_temperature"]
    rr = report["real_vs_real"]
    fig, ax1 = plt.subplots(figsize=(8, 4.8))
    ax1.plot(temps, [100 * (r["copy"]["ngram_copy_rate"] or 0) for r in rows], "o-", color="C0",
             label=f"{NGRAM_N}-grams found in training (%)")
    ax1.plot(temps, [100 * (r["copy"]["phrase_copy_rate"] or 0) for r in rows], "s-", color="C1",
             label="4-bar phrases found in training (%)")
    ax1.plot(temps, [100 * (r["means"]["in_scale_rate"] or 0) for r in rows], "d-", color="C2",
             label="in-scale notes (%)")
    ax1.axhline(100 * (rr["copy"]["ngram_copy_rate"] or 0), color="C0", linestyle=":", label="real held-out: 8-grams")
    ax1.axhline(100 * (rr["means"]["in_scale_rate"] or 0), color="C2", linestyle=":", label="real: in-scale")
    ax1.set_xlabel("temperature")
    ax1.set_ylabel("%")
    ax2 = ax1.twinx()
    med = [np.nanmedian([v if v is not None else np.nan for v in r["ratios"].values()]) for r in rows]
    ax2.plot(temps, med, "x--", color="C3", label="median distance ratio")
    ax2.set_ylim(bottom=0)
    ax2.set_ylabel("median distance / real-vs-real")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
    ax1.set_title("Temperature trade-off: novelty, staying in key, closeness")
    paths.append(_save(fig, folder / "tradeoff.png"))

    paths.append(write_pianorolls(report, samples, folder))
    return paths


def _fmt_ratio(v) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def write_pianorolls(report: dict, samples: dict, folder: Path, count: int = EXAMPLES) -> Path:
    """rolls/real_k.png and rolls/generated_k.png (first ROLL_QUARTERS quarter notes, app.music.pianoroll), and
    pianorolls.png with real on the left and generated (T = 1.0, or the first temperature) on the right."""
    from app.music.pianoroll import render_png

    plt = _plt()
    spq = report["steps_per_quarter"]
    temps = [r["temperature"] for r in report["by_temperature"]]
    t = 1.0 if 1.0 in temps else temps[0]
    real, gen = samples["real_a"], samples["generated"][t]
    rolls = ensure_dir(folder / "rolls")
    limit = ROLL_QUARTERS * spq
    pairs = []
    for k in range(min(count, len(real.events), len(gen))):
        row = []
        for kind, events, bar, title in (
                ("real", real.events[k], real.bar_steps[k], f"real: {Path(real.names[k]).name}"),
                ("generated", gen[k], steps_per_bar(spq, report["generated_time_signature"]),
                 f"generated, T = {t}, #{k + 1}")):
            notes = [(p, s / spq, min(e, limit) / spq) for p, s, e in notes_of(events) if s < limit]
            row.append(render_png(notes, rolls / f"{kind}_{k + 1}.png", beats_per_bar=bar / spq, title=title))
        pairs.append(row)
    fig, axes = plt.subplots(max(1, len(pairs)), 2, figsize=(16, 3.2 * max(1, len(pairs))), squeeze=False)
    for r, row in enumerate(pairs):
        for c, path in enumerate(row):
            axes[r][c].imshow(plt.imread(path))
            axes[r][c].axis("off")
    for ax in axes.ravel()[2 * len(pairs):]:
        ax.axis("off")
    fig.suptitle(f"Held-out real melodies (left) and generated melodies at T = {t} (right), first {ROLL_QUARTERS} "
                 f"quarter notes")
    return _save(fig, folder / "pianorolls.png")


def write_examples(report: dict, samples: dict, model: MusicModel, folder: Path, count: int = EXAMPLES) -> list[Path]:
    """The first `count` generated melodies of each temperature as MIDI files in examples/."""
    from app.music.midi_io import write_midi

    out = ensure_dir(folder / "examples")
    paths = []
    for t, ids in samples["ids"].items():
        for k, row in enumerate(ids[:count], start=1):
            melody = model.codec.decode(row, steps_per_quarter=model.steps_per_quarter,
                                        time_signature=model.time_signature)
            if melody.notes():
                paths.append(write_midi(melody, out / f"T{t}_{k}.mid"))
    return paths


# --- markdown ------------------------------------------------------------------------------------------------------
def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def to_markdown(report: dict) -> str:
    rows = report["by_temperature"]
    rr = report["real_vs_real"]
    h = report["heldout"]
    ts = "/".join(str(x) for x in report["generated_time_signature"])
    lines = [f"# Music report: {report['model']}", "",
             f"Corpus {report['corpus']}" + ("" if report["corpus_matches_model"] in (True, None) else
                                             " (**not the corpus in the model card**: held-out pieces may have "
                                             "been training pieces)") +
             f": {h['pieces']} held-out pieces split by piece into halves A ({h['half_a']}) and B ({h['half_b']}); "
             f"{h['training_pieces']} training pieces for the copy checks.",
             f"{report['samples_per_temperature']} generated melodies per temperature (seed {report['seed']}, no "
             f"primer), lengths matched to half A (median held-out length {h['steps_median']:.0f} steps); generated "
             f"bars are {ts}.", "",
             "Distances: generated vs B, and real vs real = A vs B. Scalar features: 1 - overlap area of kernel "
             "density estimates (0 = same, 1 = disjoint); histograms: Jensen-Shannon divergence in bits of the mean "
             "per-piece histogram. Ratio = distance / real-vs-real; the goal is <= "
             f"{GOAL_RATIO}.", "",
             "## Feature distances", "",
             "| feature | unit | real vs real | " + " | ".join(f"T = {r['temperature']}" for r in rows) + " |",
             "|---|---|---|" + "---|" * len(rows)]
    for f in FEATURES:
        cells = [f"{_num(r['distances'][f])} ({_fmt_ratio(r['ratios'][f])})" for r in rows]
        lines.append(f"| {f} | {UNITS[f]} | {_num(rr['distances'][f])} | " + " | ".join(cells) + " |")
    lines += ["", "## Feature means", "",
              "| feature | unit | held-out real | " + " | ".join(f"T = {r['temperature']}" for r in rows) + " |",
              "|---|---|---|" + "---|" * len(rows)]
    for f in SCALAR_FEATURES:
        lines.append(f"| {f} | {UNITS[f]} | {_num(rr['means'][f])} | " +
                     " | ".join(_num(r["means"][f]) for r in rows) + " |")
    n = report["ngram_n"]
    lines += ["", "## Copying (against the training pieces)", "",
              f"| melodies | {n}-grams found | 4-bar phrases found | melodies with a copied phrase | longest copied "
              f"run, max (notes) | median | from |", "|---|---|---|---|---|---|---|"]

    def copy_row(label, c, count):
        return (f"| {label} | {_pct(c['ngram_copy_rate'])} | {_pct(c['phrase_copy_rate'])} | "
                f"{c['melodies_with_a_copied_phrase']} of {count} | {c['longest_run_notes_max']} | "
                f"{c['longest_run_notes_median']:g} | {c['longest_run_source'] or '-'} |")

    lines.append(copy_row("held-out real, half A (yardstick)", rr["copy"], h["half_a"]))
    for r in rows:
        lines.append(copy_row(f"generated, T = {r['temperature']}", r["copy"], r["melodies"]))
    g = report.get("goals")
    if g:
        rated = len(g["features_within_ratio"]) + len(g["features_over_ratio"])
        lines += ["", f"## Goals at T = {g['temperature']} (targets, not test assertions)", "",
                  f"- feature distance <= {g['distance_ratio_goal']} x real vs real: "
                  f"{len(g['features_within_ratio'])} of {rated} features" + (f"; over: {', '.join(g['features_over_ratio'])}" if g["features_over_ratio"] else ""),
                  f"- in-scale rate within {GOAL_IN_SCALE_POINTS:g} points of the real data: "
                  f"{'met' if g['in_scale_met'] else 'not met'} ({_num(g['in_scale_gap_points'], 1)} points)",
                  f"- <= {100 * GOAL_NGRAM_COPY:g} % of generated {n}-grams found in training: "
                  f"{'met' if g['ngram_copy_met'] else 'not met'} ({_pct(g['ngram_copy_rate'])})"]
    lines += ["", "![features](features.png)", "", "![histograms](histograms.png)", "",
              "![distances](distances.png)", "", "![trade-off](tradeoff.png)", "", "![piano rolls](pianorolls.png)",
              "", "Example generated melodies: examples/*.mid.", ""]
    return "\n".join(lines)


# --- the command ---------------------------------------------------------------------------------------------------
def card_summary(report: dict) -> dict:
    """The figures a model card keeps (no per-melody lists)."""
    return {"samples_per_temperature": report["samples_per_temperature"], "seed": report["seed"],
            "corpus": report["corpus"], "heldout": report["heldout"], "real_vs_real": report["real_vs_real"],
            "by_temperature": [{k: v for k, v in r.items() if k != "copy_per_melody"}
                               for r in report["by_temperature"]],
            "goals": report["goals"]}


def default_corpus(model: MusicModel) -> str:
    from app.music.corpus import DEFAULT_OUT

    recorded = (model.card.get("corpus") or {}).get("path")
    return recorded if recorded and Path(recorded).exists() else DEFAULT_OUT


def run_report(model: str | Path = "models/folk", corpus: str | Path | None = None, n: int = DEFAULT_N,
               temperatures: Sequence[float] = TEMPERATURES, seed: int = 0, out_dir: str | Path = "outputs/reports",
               update_card: bool = False, progress: bool = False) -> tuple[Path, dict]:
    """Write report.json, report.md, PNG plots and example MIDI files to <out_dir>/<timestamp>-music/; optionally
    add the figures to the model's card.json (key "report")."""
    from app.music.corpus import load_corpus

    if n < 1:
        raise OptionError(f"-n must be >= 1, got {n}")
    base = ensure_dir(out_dir)
    m = MusicModel.load(model)
    c = load_corpus(corpus if corpus is not None else default_corpus(m))
    report, samples = build_report(m, c, n, temperatures, seed, progress=progress)
    folder = unique_stem(base, f"{timestamp()}-music", ("",))
    folder.mkdir()
    write_plots(report, samples, folder)
    write_examples(report, samples, m, folder)
    atomic_write(folder / "report.json", json.dumps(report, indent=1))
    atomic_write(folder / "report.md", to_markdown(report))
    if update_card:
        update_card_file(model, "report", card_summary(report))
    return folder, report
