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
  form       per piece: `repetition` and the share of bars equal to the bar 1, 2, 4 and 8 bars earlier
             (app.music.features.bar_lookback), means for generated vs held-out real; a bars x bars self-similarity
             picture of generated and real melodies.
  oracle     what a perfect model would score on the same yardstick: ORACLE_SETS sets of n real *training* tunes
             (seeded, without replacement; n capped at the training pieces) in place of generated melodies, each
             against half B: the features within GOAL_RATIO per set. One split's yardstick is a single draw of
             A vs B, so on some seeds even real tunes miss the 1.5x goal on several features; this says how many
             the split allows.
  classifier can logistic regression on the per-piece features (CLASSIFIER_FEATURES) tell generated melodies from
             held-out half B? Stratified 5-fold cross-validation, 5 seeded repeats, classes balanced by subsampling
             (app.core.logreg.separability): 0.5 = indistinguishable. The floor is the same classifier on half A vs
             half B (real vs real).
Bars: a real piece has its own metre (`piece_bars`: its time signature, or its metre changes
when the corpus records them in meta["metre"] as [(step, numerator, denominator), ...]), so 6/8 and 3/4 tunes are
measured by their own bars (app.music.metre); a first change before step 0 is a pickup. A generated melody of a
metre-conditioned arch (lookback, attention) is written in the first time signature of the half-A piece whose
length it takes, so both sides have the same mix of metres; a `basic` model knows one metre, its own
(config codec.time_signature, the corpus's most common one).

Outputs (`run_report`): <out_dir>/<timestamp>-music/report.json, report.md, features.png (scalar feature
histograms), histograms.png (pitch-class, interval and note-length histograms), distances.png (ratio per feature
and temperature), tradeoff.png (copying, in-scale rate and distance by temperature), pianorolls.png (real and
generated piano rolls side by side; the single rolls are in rolls/), selfsim.png (bar self-similarity of real and
generated melodies), form.png (bar lookback shares and repetition by temperature) and a few generated .mid files in
examples/.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import card_data, update_card as update_card_file
from app.core.logreg import fit_logreg, separability
from app.core.outputs import atomic_write, ensure_dir, new_folder, timestamp
from app.errors import DataError, OptionError
from app.music.copying import TrainingIndex
from app.music.generate import MelodyGenerator
from app.music import metre
from app.music.features import (FEATURES, FORM_FEATURES, FORM_LAGS, HIST_FEATURES, SCALAR_FEATURES, UNITS,
                                bar_lines, bar_self_similarity, events_from_ids, mean_hist, notes_of, set_distance,
                                set_features, steps_per_bar)

TEMPERATURES = (0.8, 1.0, 1.2)
DEFAULT_N = 200
NGRAM_N = 8
BATCH = 64  # app.music.sampler.MAX_OUTPUTS
GOAL_RATIO = 1.5
GOAL_IN_SCALE_POINTS = 5.0
GOAL_NGRAM_COPY = 0.05
GOAL_REPETITION = (0.5, 1.5)  # generated / held-out real repetition
GOAL_CLASSIFIER = 0.65  # cross-validated accuracy generated vs real at most this
CLASSIFIER_FEATURES = SCALAR_FEATURES + FORM_FEATURES
CLASSIFIER_FOLDS = 5
CLASSIFIER_REPEATS = 5
CLASSIFIER_L2 = 0.01
SELFSIM_MIN_BARS = 8  # self-similarity pictures show melodies with at least this many bars (when there are any)
EXAMPLES = 3
ORACLE_SETS = 5  # sets of real training tunes scored like generated melodies (the report's "oracle")
ROLL_QUARTERS = 32  # piano rolls show the first 32 quarter notes


# --- inputs --------------------------------------------------------------------------------------------------------
@dataclass
class RealSet:
    """Real pieces as event arrays with their bars (`piece_bars`: steps per bar, or metre changes) and names."""

    events: list[np.ndarray]
    bar_steps: list
    names: list[str]
    metres: list[tuple[int, int]]  # each piece's first time signature


def piece_bars(meta: dict, steps_per_quarter: int):
    """A piece's bars from its corpus meta: its metre changes [(step, num, den), ...] when meta["metre"] holds more
    than one, else the bar length in steps of its (only) time signature (app.music.metre; 4/4 when unknown)."""
    changes = meta.get("metre") or []
    if len(changes) > 1 or (changes and int(changes[0][0]) != 0):  # metre changes, or a pickup
        return [tuple(int(x) for x in c) for c in changes]
    ts = changes[0][1:] if changes else (meta.get("time_signature") or (4, 4))
    return metre.steps_per_bar(steps_per_quarter, ts)


def lines_of(events: Sequence[np.ndarray], bars, steps_per_quarter: int) -> list[np.ndarray]:
    """Bar lines of each piece (app.music.features.bar_lines); `bars` one value for all or one per piece."""
    bars = [bars] * len(events) if isinstance(bars, (int, np.integer)) else list(bars)
    return [bar_lines(len(e), steps_per_quarter, b) for e, b in zip(events, bars)]


def first_metre(meta: dict) -> tuple[int, int]:
    """A piece's first time signature (numerator, denominator) from its corpus meta (4/4 when unknown)."""
    changes = meta.get("metre") or []
    ts = changes[0][1:] if changes else (meta.get("time_signature") or (4, 4))
    return int(ts[0]), int(ts[1])


def real_set(corpus, pieces: Sequence[np.ndarray], metas: Sequence[dict]) -> RealSet:
    spq = corpus.steps_per_quarter
    return RealSet([events_from_ids(p, corpus.codec) for p in pieces], [piece_bars(m, spq) for m in metas],
                   [m.get("name", "") for m in metas], [first_metre(m) for m in metas])


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


def target_indices(count: int, n: int, seed: int = 0) -> np.ndarray:
    """n indices into `count` pieces without replacement (a seeded permutation, repeated when n > count)."""
    return np.resize(np.random.default_rng(seed).permutation(count), n)


def target_lengths(lengths: Sequence[int], n: int, seed: int = 0) -> np.ndarray:
    """n lengths drawn from `lengths` without replacement (a seeded permutation, repeated when n > len)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return lengths[target_indices(len(lengths), n, seed)]


def generate_melodies(model: MelodyGenerator, lengths: Sequence[int], temperature: float, seed: int = 0,
                      metres: Sequence[tuple[int, int]] | None = None) -> list[np.ndarray]:
    """One melody (token ids) per requested length (and time signature, default the model's), in the order given;
    batches of one metre and similar lengths."""
    from app.core.sampling import SamplingOptions
    from app.music.sampler import MAX_STEPS, MelodyOptions

    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), MAX_STEPS)
    metres = [tuple(model.time_signature)] * len(lengths) if metres is None else [tuple(m) for m in metres]
    if len(metres) != len(lengths):
        raise OptionError(f"{len(metres)} metres for {len(lengths)} melodies")
    out: list[np.ndarray | None] = [None] * len(lengths)
    b = 0
    for ts in sorted(set(metres)):
        mine = np.array([i for i, m in enumerate(metres) if m == ts], dtype=np.int64)
        order = mine[np.argsort(lengths[mine], kind="stable")]
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            opts = MelodyOptions(n=len(idx), steps=int(max(1, lengths[idx].max())),
                                 sampling=SamplingOptions(temperature=float(temperature)), seed=seed + b)
            ids = model.generate_ids(opts, time_signature=None if ts == tuple(model.time_signature) else ts)
            for row, i in zip(ids, idx):
                out[i] = row[:max(1, lengths[i])]
            b += 1
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


def _ratios(dist: dict, yard: dict) -> dict:
    """distance / yardstick per feature (None where either is undefined or the yardstick is 0)."""
    return {k: _f(dist[k] / yard[k]) if dist[k] is not None and yard[k] else None for k in FEATURES}


def form_means(feats: dict) -> dict:
    """Mean per-piece repetition and bar lookback shares (pieces where the figure is defined), None if none is."""
    return {name: _f(np.nanmean(feats[name])) if np.isfinite(feats[name]).any() else None
            for name in ("repetition",) + FORM_FEATURES}


def feature_matrix(feats: dict, names: Sequence[str] = CLASSIFIER_FEATURES) -> np.ndarray:
    """(pieces, len(names)) float matrix of per-piece features (NaN where undefined) for the classifier."""
    return np.stack([np.asarray(feats[n], float) for n in names], axis=1)


def classify(real: dict, other: dict, seed: int = 0) -> dict:
    """Cross-validated accuracy of logistic regression telling `real` from `other` pieces (feature dicts of
    set_features), app.core.logreg.separability; {"accuracy": None, "note": why} when a set has < 2 pieces.
    "weights": the model fitted on all pieces, per standardised feature (> 0: typical of `other`), to see which
    features give generated melodies away."""
    a, b = feature_matrix(real), feature_matrix(other)
    if min(len(a), len(b)) < 2:
        return {"accuracy": None, "note": f"too few pieces to cross-validate ({len(a)} and {len(b)})"}
    res = separability(a, b, k=CLASSIFIER_FOLDS, l2=CLASSIFIER_L2, repeats=CLASSIFIER_REPEATS, seed=seed)
    full = fit_logreg(np.vstack([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))], CLASSIFIER_L2)
    return {**res.summary(), "feature_names": list(CLASSIFIER_FEATURES),
            "weights": {n: _f(w) for n, w in zip(CLASSIFIER_FEATURES, full.w)}}


def build_report(model: MelodyGenerator, corpus, n: int = DEFAULT_N, temperatures: Sequence[float] = TEMPERATURES,
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
    copy_real = index.check(half_a.events, lines_of(half_a.events, half_a.bar_steps, spq), NGRAM_N)
    floor = classify(feats_a, feats_b, seed)
    pick = target_indices(len(half_a.events), n, seed)
    lengths = np.array([len(half_a.events[k]) for k in pick], dtype=np.int64)
    gen_metres = ([half_a.metres[k] for k in pick] if model.metre_conditioned
                  else [tuple(model.time_signature)] * n)
    bar = [steps_per_bar(spq, ts) for ts in gen_metres]
    yard = _distances(feats_a, feats_b)
    say(f"scoring {ORACLE_SETS} sets of real training tunes on the same yardstick (the oracle)")
    oracle = oracle_sets(corpus, feats_b, yard, n, np.random.default_rng([seed, 1]))
    rows, samples = [], {"real_a": half_a, "real_b": half_b, "features_real": feats_real, "generated": {},
                         "features": {}, "ids": {}, "generated_bar_steps": bar, "generated_metres": gen_metres}
    for t in temps:
        say(f"T = {t}: generating {n} melodies ({int(lengths.sum()):,} steps)")
        ids = generate_melodies(model, lengths, t, seed, gen_metres)
        events = [events_from_ids(row, model.codec) for row in ids]
        feats = set_features(events, spq, bar)
        dist = _distances(feats, feats_b)
        copy = index.check(events, bar, NGRAM_N)
        clf = classify(feats_b, feats, seed)
        rows.append({"temperature": t, "melodies": n, "notes": int(feats["notes"].sum()),
                     "empty_melodies": int((feats["notes"] == 0).sum()),
                     "distances": dist,
                     "ratios": _ratios(dist, yard),
                     "means": _means(feats), "copy": copy.summary(), "form": form_means(feats),
                     "classifier": clf,
                     "copy_per_melody": {"ngram_copy_rate": [_f(f / t_) if t_ else None for f, t_ in
                                                             zip(copy.ngram_found, copy.ngram_total)],
                                         "longest_run_notes": [int(x) for x in copy.longest_run]}})
        samples["generated"][t], samples["features"][t], samples["ids"][t] = events, feats, ids
    report = {
        "model": str(model.path), "corpus": str(corpus.path), "corpus_matches_model": corpus_matches(model, corpus),
        "samples_per_temperature": n, "seed": seed, "ngram_n": NGRAM_N, "steps_per_quarter": spq,
        "generated_time_signature": list(model.time_signature),
        "generated_metres": {metre.metre_label(*ts): gen_metres.count(ts) for ts in sorted(set(gen_metres))},
        "heldout": {"pieces": len(corpus.val), "half_a": len(half_a.events), "half_b": len(half_b.events),
                    "training_pieces": len(corpus.train),
                    "steps_median": float(np.median([len(e) for e in half_a.events + half_b.events]))},
        "units": {k: UNITS[k] for k in FEATURES},
        "distance_kind": {k: ("JS bits" if k in HIST_FEATURES else "1 - KDE overlap") for k in FEATURES},
        "real_vs_real": {"distances": yard, "means": _means(feats_real),
                         "copy": copy_real.summary(), "form": form_means(feats_real), "classifier": floor,
                         "oracle": oracle},
        "form_lags_bars": list(FORM_LAGS),
        "by_temperature": rows,
    }
    report["goals"] = goals(report)
    return report, samples


def within_goal(ratios: dict) -> int:
    """How many features have a distance ratio <= GOAL_RATIO (undefined ratios do not count)."""
    return sum(v is not None and v <= GOAL_RATIO for v in ratios.values())


def oracle_sets(corpus, feats_b: dict, yard: dict, n: int, rng: np.random.Generator,
                sets: int = ORACLE_SETS) -> dict:
    """Score `sets` sets of min(n, training pieces) real training tunes (drawn by `rng` without replacement) as the
    report scores generated melodies: distance to half B (`feats_b`) over the yardstick `yard`, per feature.
    Returns {"sets", "pieces", "within": [features within GOAL_RATIO per set], "median_ratios": {feature: x},
    "sets_over_goal": {feature: sets whose ratio is over GOAL_RATIO}}."""
    spq = corpus.steps_per_quarter
    m = min(int(n), len(corpus.train))
    counts, ratios = [], []
    for _ in range(sets):
        idx = rng.choice(len(corpus.train), m, replace=False)
        t = real_set(corpus, [corpus.train[i] for i in idx], [corpus.train_meta[i] for i in idx])
        dist = _distances(set_features(t.events, spq, t.bar_steps), feats_b)
        r = _ratios(dist, yard)
        counts.append(within_goal(r))
        ratios.append([np.nan if r[k] is None else r[k] for k in FEATURES])
    table = np.array(ratios, float).reshape(sets, len(FEATURES))
    col = [table[:, i][np.isfinite(table[:, i])] for i in range(len(FEATURES))]
    return {"sets": int(sets), "pieces": m, "within": counts,
            "median_ratios": {k: _f(np.median(c)) if len(c) else None for k, c in zip(FEATURES, col)},
            "sets_over_goal": {k: int((table[:, i] > GOAL_RATIO).sum()) for i, k in enumerate(FEATURES)}}


def corpus_matches(model: MelodyGenerator, corpus) -> bool | None:
    """True when the corpus holds the pieces the model card records (token fingerprint of train + validation, as
    app.music.train writes it), None when the card does not say."""
    want = card_data(model.card).get("tokens_sha256")
    if not want:
        return None
    from app.music.train import corpus_fingerprint

    return corpus_fingerprint(list(corpus.train) + list(corpus.val)) == want


def _le(a, b) -> bool | None:
    return None if a is None or b is None else bool(a <= b)


def form_goals(report: dict, row: dict) -> dict:
    """Form, realism and copying of one temperature's row against held-out real tunes (issue 10's targets)."""
    rr = report["real_vs_real"]
    rep_gen, rep_real = row["means"]["repetition"], rr["means"]["repetition"]
    ratio = _f(rep_gen / rep_real) if rep_gen is not None and rep_real else None
    acc, floor = row["classifier"]["accuracy"], rr["classifier"]["accuracy"]
    c, cr = row["copy"], rr["copy"]
    return {"repetition_generated": rep_gen, "repetition_real": rep_real, "repetition_ratio": ratio,
            "repetition_goal": list(GOAL_REPETITION),
            "repetition_met": ratio is not None and GOAL_REPETITION[0] <= ratio <= GOAL_REPETITION[1],
            "classifier_accuracy": acc, "classifier_floor": floor, "classifier_goal": GOAL_CLASSIFIER,
            "classifier_met": _le(acc, GOAL_CLASSIFIER),
            "ngram_copy_rate_real": cr["ngram_copy_rate"],
            "ngram_copy_vs_real_met": _le(c["ngram_copy_rate"], cr["ngram_copy_rate"]),
            "phrase_copy_rate": c["phrase_copy_rate"], "phrase_copy_rate_real": cr["phrase_copy_rate"],
            "phrase_copy_vs_real_met": _le(c["phrase_copy_rate"], cr["phrase_copy_rate"])}


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
            **form_goals(report, row),
            "distance_ratio_goal": GOAL_RATIO,
            "features_within_ratio": sorted(k for k, v in ratios.items() if v <= GOAL_RATIO),
            "features_over_ratio": sorted(k for k, v in ratios.items() if v > GOAL_RATIO),
            "features_within_ratio_oracle": list(report["real_vs_real"].get("oracle", {}).get("within", [])),
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
    paths.append(write_self_similarity(report, samples, folder))
    paths.append(write_form_plot(report, folder))
    return paths


def _first_bar(bars, spq: int) -> int:
    """Steps of a piece's first bar (`bars`: steps per bar or metre changes)."""
    return int(bars) if isinstance(bars, (int, np.integer)) else metre.steps_per_bar(spq, bars[0][1:])


def _pick_long(lines: Sequence[np.ndarray], count: int, min_bars: int = SELFSIM_MIN_BARS) -> list[int]:
    """Indices of the first `count` pieces with at least `min_bars` complete bars (else the longest ones)."""
    bars = np.array([len(x) - 1 for x in lines])
    long = [int(i) for i in np.flatnonzero(bars >= min_bars)[:count]]
    return long or [int(i) for i in np.argsort(-bars, kind="stable")[:count] if bars[i] > 0]


def write_self_similarity(report: dict, samples: dict, folder: Path, count: int = EXAMPLES) -> Path:
    """selfsim.png: bars x bars matrices (equal bars with a note-on lit, app.music.features.bar_self_similarity)
    of held-out real melodies (left) and generated melodies at T = 1.0 or the first temperature (right)."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    spq = report["steps_per_quarter"]
    temps = [r["temperature"] for r in report["by_temperature"]]
    t = 1.0 if 1.0 in temps else temps[0]
    real, gen = samples["real_a"], samples["generated"][t]
    real_lines = lines_of(real.events, real.bar_steps, spq)
    gen_lines = lines_of(gen, samples["generated_bar_steps"], spq)
    cols = [[("held-out real", Path(real.names[i]).name, real.events[i], real_lines[i])
             for i in _pick_long(real_lines, count)],
            [(f"generated, T = {t}", f"#{i + 1}", gen[i], gen_lines[i]) for i in _pick_long(gen_lines, count)]]
    rows = max(1, *(len(c) for c in cols))
    fig, axes = plt.subplots(rows, 2, figsize=(10, 4.6 * rows), squeeze=False)
    for c, col in enumerate(cols):
        for r in range(rows):
            ax = axes[r][c]
            if r >= len(col):
                ax.axis("off")
                continue
            kind, name, events, lines = col[r]
            sim = bar_self_similarity(events, lines)
            m = len(sim)
            ax.imshow(sim, cmap="Greys", vmin=0, vmax=1, interpolation="nearest",
                      extent=(0.5, m + 0.5, m + 0.5, 0.5))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("bar")
            ax.set_ylabel("bar")
            off = sim & ~np.eye(m, dtype=bool)
            ax.set_title(f"{kind}: {name}\n{m} bars, {int(off.sum()) // 2} equal pairs", fontsize=10)
    fig.suptitle("Bar self-similarity: a dark cell (i, j) means bars i and j are equal, note for note")
    return _save(fig, folder / "selfsim.png")


def write_form_plot(report: dict, folder: Path) -> Path:
    """form.png: mean share of bars equal to the bar 1, 2, 4, 8 bars earlier, and repetition, real vs generated."""
    plt = _plt()
    names = ("repetition",) + FORM_FEATURES
    labels = ["4-bar\nrepetition"] + [f"= bar {lag}\nback" for lag in report["form_lags_bars"]]
    series = [("held-out real", report["real_vs_real"]["form"])] + [
        (f"generated, T = {r['temperature']}", r["form"]) for r in report["by_temperature"]]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for k, (label, form) in enumerate(series):
        vals = [form[n] if form[n] is not None else np.nan for n in names]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=label,
               color="0.5" if k == 0 else None)
    ax.set_xticks(x, labels)
    ax.set_ylabel("mean share per piece")
    ax.set_title("Form: how often a melody comes back to an earlier bar or 4-bar phrase")
    ax.legend(fontsize=8)
    return _save(fig, folder / "form.png")


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
                ("real", real.events[k], _first_bar(real.bar_steps[k], spq), f"real: {Path(real.names[k]).name}"),
                ("generated", gen[k], samples["generated_bar_steps"][k],
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


def write_examples(report: dict, samples: dict, model: MelodyGenerator, folder: Path,
                   count: int = EXAMPLES) -> list[Path]:
    """The first `count` generated melodies of each temperature as MIDI files in examples/."""
    from app.music.midi_io import write_midi

    out = ensure_dir(folder / "examples")
    paths = []
    for t, ids in samples["ids"].items():
        for k, row in enumerate(ids[:count], start=1):
            melody = model.codec.decode(row, steps_per_quarter=model.steps_per_quarter,
                                        time_signature=samples["generated_metres"][k - 1])
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
    metres = report.get("generated_metres") or {"/".join(str(x) for x in report["generated_time_signature"]): 0}
    ts = ", ".join(f"{m} ({c})" if c else m for m, c in metres.items())
    lines = [f"# Music report: {report['model']}", "",
             f"Corpus {report['corpus']}" + ("" if report["corpus_matches_model"] in (True, None) else
                                             " (**not the corpus in the model card**: held-out pieces may have "
                                             "been training pieces)") +
             f": {h['pieces']} held-out pieces split by piece into halves A ({h['half_a']}) and B ({h['half_b']}); "
             f"{h['training_pieces']} training pieces for the copy checks.",
             f"{report['samples_per_temperature']} generated melodies per temperature (seed {report['seed']}, no "
             f"primer), lengths matched to half A (median held-out length {h['steps_median']:.0f} steps); generated "
             f"melodies by metre: {ts}.", "",
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
    lines += form_markdown(report)
    g = report.get("goals")
    if g:
        rated = len(g["features_within_ratio"]) + len(g["features_over_ratio"])
        lines += ["", f"## Goals at T = {g['temperature']} (targets, not test assertions)", "",
                  f"- feature distance <= {g['distance_ratio_goal']} x real vs real: "
                  f"{len(g['features_within_ratio'])} of {rated} features" + (f"; over: {', '.join(g['features_over_ratio'])}" if g["features_over_ratio"] else ""),
                  *([f"  (real training tunes in place of generated melodies, {len(g['features_within_ratio_oracle'])} "
                     f"sets on this split: {', '.join(map(str, g['features_within_ratio_oracle']))} of {len(FEATURES)}"
                     f" features; what a perfect model would score)"] if g.get("features_within_ratio_oracle") else []),
                  f"- in-scale rate within {GOAL_IN_SCALE_POINTS:g} points of the real data: "
                  f"{'met' if g['in_scale_met'] else 'not met'} ({_num(g['in_scale_gap_points'], 1)} points)",
                  f"- <= {100 * GOAL_NGRAM_COPY:g} % of generated {n}-grams found in training: "
                  f"{'met' if g['ngram_copy_met'] else 'not met'} ({_pct(g['ngram_copy_rate'])})"]
        if "repetition_met" in g:
            met = lambda v: "n/a" if v is None else ("met" if v else "not met")  # noqa: E731
            lo, hi = g["repetition_goal"]
            lines += [f"- repetition within {lo:g}x-{hi:g}x of held-out real: {met(g['repetition_met'])} "
                      f"({_num(g['repetition_generated'])} vs {_num(g['repetition_real'])}, "
                      f"{_fmt_ratio(g['repetition_ratio'])})",
                      f"- classifier accuracy <= {100 * g['classifier_goal']:g} %: {met(g['classifier_met'])} "
                      f"({_pct(g['classifier_accuracy'])}; real vs real floor {_pct(g['classifier_floor'])})",
                      f"- generated {n}-grams found in training <= held-out real: "
                      f"{met(g['ngram_copy_vs_real_met'])} ({_pct(g['ngram_copy_rate'])} vs "
                      f"{_pct(g['ngram_copy_rate_real'])})",
                      f"- 4-bar phrases copied from training <= held-out real: {met(g['phrase_copy_vs_real_met'])} "
                      f"({_pct(g['phrase_copy_rate'])} vs {_pct(g['phrase_copy_rate_real'])})"]
    lines += ["", "![features](features.png)", "", "![histograms](histograms.png)", "",
              "![distances](distances.png)", "", "![trade-off](tradeoff.png)", "", "![piano rolls](pianorolls.png)",
              "", "![bar self-similarity](selfsim.png)", "", "![form](form.png)",
              "", "Example generated melodies: examples/*.mid.", ""]
    return "\n".join(lines)


def form_markdown(report: dict) -> list[str]:
    """The "Form, realism and copying" section: held-out real next to each temperature."""
    rows = report["by_temperature"]
    rr = report["real_vs_real"]
    n = report["ngram_n"]
    clf = rr["classifier"]
    lines = ["", "## Form, realism and copying: generated vs held-out real", "",
             "Repetition and 'same as the bar L bars back': mean per piece (real: halves A and B; bars from each "
             "piece's own metre). Classifier: cross-validated accuracy of logistic regression on "
             f"{len(CLASSIFIER_FEATURES)} per-piece features ({', '.join(CLASSIFIER_FEATURES)}) telling the "
             f"melodies from held-out half B; {clf.get('folds', CLASSIFIER_FOLDS)}-fold, "
             f"{clf.get('repeats', CLASSIFIER_REPEATS)} repeats, balanced classes; 50 % = indistinguishable, the "
             "real column is half A vs half B (the floor). Copying: against the training pieces (real: half A).",
             "", "| figure | held-out real | " + " | ".join(f"T = {r['temperature']}" for r in rows) + " |",
             "|---|---|" + "---|" * len(rows)]
    lines.append("| 4-bar repetition | " + _num(rr["form"]["repetition"]) + " | " +
                 " | ".join(_num(r["form"]["repetition"]) for r in rows) + " |")
    for lag, name in zip(report["form_lags_bars"], FORM_FEATURES):
        lines.append(f"| bars equal to the bar {lag} back | " + _num(rr["form"][name]) + " | " +
                     " | ".join(_num(r["form"][name]) for r in rows) + " |")
    lines.append("| classifier accuracy | " + _pct(clf["accuracy"]) + " (floor) | " +
                 " | ".join(_pct(r["classifier"]["accuracy"]) for r in rows) + " |")
    lines.append(f"| {n}-grams found in training | " + _pct(rr["copy"]["ngram_copy_rate"]) + " | " +
                 " | ".join(_pct(r["copy"]["ngram_copy_rate"]) for r in rows) + " |")
    lines.append("| 4-bar phrases found in training | " + _pct(rr["copy"]["phrase_copy_rate"]) + " | " +
                 " | ".join(_pct(r["copy"]["phrase_copy_rate"]) for r in rows) + " |")
    for r in rows:
        w = {k: v for k, v in (r["classifier"].get("weights") or {}).items() if v is not None}
        top = sorted(w, key=lambda k: -abs(w[k]))[:3]
        if top:
            lines.append(f"\nWhat gives the melodies at T = {r['temperature']} away (classifier weights on "
                         "standardised features, > 0 = more typical of generated): " +
                         ", ".join(f"{k} {w[k]:+.2f}" for k in top) + ".")
    return lines


# --- the command ---------------------------------------------------------------------------------------------------
def card_summary(report: dict) -> dict:
    """The figures a model card keeps (no per-melody lists)."""
    return {"samples_per_temperature": report["samples_per_temperature"], "seed": report["seed"],
            "corpus": report["corpus"], "heldout": report["heldout"], "real_vs_real": report["real_vs_real"],
            "by_temperature": [{k: v for k, v in r.items() if k != "copy_per_melody"}
                               for r in report["by_temperature"]],
            "goals": report["goals"]}


def run_report(model: str | Path | None = None, corpus: str | Path | None = None, n: int = DEFAULT_N,
               temperatures: Sequence[float] = TEMPERATURES, seed: int = 0, out_dir: str | Path = "outputs/reports",
               update_card: bool = False, progress: bool = False) -> tuple[Path, dict]:
    """Write report.json, report.md, PNG plots and example MIDI files to <out_dir>/<timestamp>-music/; optionally
    add the figures to the model's card.json (key "report")."""
    from app.music.corpus import corpus_for, load_corpus

    if n < 1:
        raise OptionError(f"-n must be >= 1, got {n}")
    base = ensure_dir(out_dir)
    m = MelodyGenerator.load(model)
    c = load_corpus(corpus_for(corpus, m.card, progress=progress))
    report, samples = build_report(m, c, n, temperatures, seed, progress=progress)
    folder = new_folder(base, f"{timestamp()}-music")  # atomic: never a folder another run also took
    write_plots(report, samples, folder)
    write_examples(report, samples, m, folder)
    atomic_write(folder / "report.json", json.dumps(report, indent=1))
    atomic_write(folder / "report.md", to_markdown(report))
    if update_card:
        update_card_file(m.path, "report", card_summary(report))
    return folder, report
