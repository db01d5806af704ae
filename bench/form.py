"""Form in a corpus: how often a bar equals the bar 1, 2, 4, 8 ... bars earlier (played order, real bar lines).

Run: .venv/bin/python bench/form.py [--corpus data/corpora/default] [--lags 1 2 3 4 6 8 12 16] [--json out.json]

Bars come from each array's metre (Corpus.bar_grids: time signatures, pickups and re-barring after short bars);
only complete bars count, and only original arrays (no augmented copies). For a lag L, the share is
    (bars equal, token for token, to the complete bar L bars earlier in the same array) / (bars that have one).
"Any earlier" is the share of bars equal to some earlier bar of the array. The same is given per first metre for
lags 4 and 8, and the `repetition` feature of `music report` (4-bar windows, app.music.features) averaged over
arrays, to compare with the figures of the report. Use it to choose lookback distances from data.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.music.corpus import load_corpus  # noqa: E402
from app.music.features import events_from_ids, repetition  # noqa: E402
from app.music.metre import metre_label, steps_per_bar  # noqa: E402


def bars_of(ids: np.ndarray, bar: np.ndarray, pos: np.ndarray) -> list[bytes | None]:
    """The array cut at its bar lines: each complete bar's tokens as bytes, None for an incomplete bar."""
    starts = np.flatnonzero(pos == 0)
    out: list[bytes | None] = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(ids)
        out.append(ids[s:end].tobytes() if end - s == bar[s] else None)
    return out


def analyse(corpus_dir: str, lags: list[int]) -> dict:
    c = load_corpus(corpus_dir)
    pieces, metas, grids = [], [], []
    for which in ("train", "val"):
        arrays, m = (c.train, c.train_meta) if which == "train" else (c.val, c.val_meta)
        for ids, meta, grid in zip(arrays, m, c.bar_grids(which)):
            if meta["shift"] == 0:
                pieces.append(ids), metas.append(meta), grids.append(grid)
    equal = {lag: 0 for lag in lags}
    having = {lag: 0 for lag in lags}
    by_metre: dict[str, dict[int, list[int]]] = defaultdict(lambda: {4: [0, 0], 8: [0, 0]})
    any_earlier = total_bars = 0
    reps = []
    for ids, meta, (bar, pos) in zip(pieces, metas, grids):
        bars = bars_of(np.asarray(ids), bar, pos)
        label = metre_label(*meta["metre"][0][1:])
        seen: set[bytes] = set()
        for i, b in enumerate(bars):
            if b is None:
                continue
            total_bars += 1
            any_earlier += b in seen
            seen.add(b)
            for lag in lags:
                if i - lag >= 0 and bars[i - lag] is not None:
                    having[lag] += 1
                    equal[lag] += bars[i - lag] == b
                    if lag in (4, 8):
                        by_metre[label][lag][0] += bars[i - lag] == b
                        by_metre[label][lag][1] += 1
        r = repetition(events_from_ids(ids, c.codec), steps_per_bar(c.steps_per_quarter, meta["time_signature"]))
        if not np.isnan(r):
            reps.append(r)
    firsts: dict[str, int] = defaultdict(int)
    for meta in metas:
        firsts[metre_label(*meta["metre"][0][1:])] += 1
    return {
        "corpus": corpus_dir, "arrays": len(pieces), "complete_bars": total_bars,
        "equal_to_bar_lag": {str(lag): round(equal[lag] / max(1, having[lag]), 4) for lag in lags},
        "bars_with_lag": {str(lag): having[lag] for lag in lags},
        "equal_to_any_earlier_bar": round(any_earlier / max(1, total_bars), 4),
        "by_first_metre": {m: {"arrays": firsts[m],
                               **{f"lag{lag}": round(v[lag][0] / max(1, v[lag][1]), 4) for lag in (4, 8)}}
                           for m, v in sorted(by_metre.items(), key=lambda kv: -firsts[kv[0]])},
        "repetition_feature_mean": round(float(np.mean(reps)), 4) if reps else None,
        "repetition_feature_arrays": len(reps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(ROOT / "data/corpora/default"))
    ap.add_argument("--lags", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8, 12, 16])
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    res = analyse(args.corpus, args.lags)
    print(f"corpus {res['corpus']}: {res['arrays']} arrays, {res['complete_bars']:,} complete bars")
    for lag in args.lags:
        print(f"  bar equal to the bar {lag:>2} earlier: {100 * res['equal_to_bar_lag'][str(lag)]:5.1f} % "
              f"(of {res['bars_with_lag'][str(lag)]:,} bars)")
    print(f"  bar equal to any earlier bar: {100 * res['equal_to_any_earlier_bar']:.1f} %")
    for m, v in res["by_first_metre"].items():
        print(f"  {m:>5}: {v['arrays']:5} arrays, lag 4 {100 * v['lag4']:5.1f} %, lag 8 {100 * v['lag8']:5.1f} %")
    print(f"  repetition feature (4-bar windows) mean over {res['repetition_feature_arrays']} arrays: "
          f"{res['repetition_feature_mean']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
