"""Names quality report: novelty, uniqueness, lengths and character-bigram distance to the data, per temperature.

The yardstick for each distance is the same distance between the validation names and the training names (real
vs real): a generated set as close to the training data as held-out real names are is as good as it gets.
Distances are Jensen-Shannon divergences in bits (0 = identical distributions, 1 = disjoint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import update_card as update_card_file
from app.core.metrics import js_divergence
from app.core.outputs import atomic_write, ensure_dir, new_folder, timestamp
from app.errors import OptionError
from app.names.evaluate import heldout_nll
from app.names.generator import NameGenerator, make_options

TEMPERATURES = (0.5, 0.8, 1.0, 1.2)


def bigram_counts(names: Sequence[str], alphabet: str) -> np.ndarray:
    """Counts of character bigrams, '^' and '$' marking start and end: a flat vector over (alphabet+2)^2."""
    symbols = "^" + alphabet + "$"
    idx = {ch: i for i, ch in enumerate(symbols)}
    counts = np.zeros((len(symbols), len(symbols)))
    for name in names:
        s = "^" + name + "$"
        for a, b in zip(s, s[1:]):
            counts[idx[a], idx[b]] += 1
    return counts.ravel()


def length_hist(names: Sequence[str], max_len: int) -> np.ndarray:
    return np.bincount([min(len(n), max_len) for n in names], minlength=max_len + 1).astype(float)


def build_report(gen: NameGenerator, n: int = 1000, temperatures: Sequence[float] = TEMPERATURES,
                 seed: int = 0) -> tuple[dict, dict[float, list[str]]]:
    if not gen.train_names or not gen.val_names:
        raise OptionError(f"{gen.folder.path} has no names_train.txt/names_val.txt; retrain it with this version")
    alphabet = "".join(gen.codec.alphabet)
    train, val = gen.train_names, gen.val_names
    max_len = max(len(s) for s in train + val) + 5
    ref_bigrams, ref_len = bigram_counts(train, alphabet), length_hist(train, max_len)
    yardstick = {"bigram_js_bits": js_divergence(bigram_counts(val, alphabet), ref_bigrams),
                 "length_js_bits": js_divergence(length_hist(val, max_len), ref_len),
                 "mean_length": float(np.mean([len(s) for s in val]))}
    rows, samples = [], {}
    for t in temperatures:
        result = gen.run(make_options(n=n, temperature=t, seed=seed, max_len=max_len))
        names = result.names
        samples[t] = names
        r = result.report
        rows.append({"temperature": t, "samples": r["samples"], "new": r["new"], "in_train": r["in_train"],
                     "in_validation": r.get("in_validation", 0), "unique": r["unique"],
                     "new_fraction": r["new_fraction"], "unique_fraction": r["unique_fraction"],
                     "mean_length": float(np.mean([len(s) for s in names])),
                     "bigram_js_bits": js_divergence(bigram_counts(names, alphabet), ref_bigrams),
                     "length_js_bits": js_divergence(length_hist(names, max_len), ref_len),
                     "examples": names[:8]})
    report = {"model": str(gen.folder.path), "samples_per_temperature": n, "seed": seed,
              "heldout": heldout_nll(gen, val), "real_vs_real": yardstick, "by_temperature": rows,
              "train_names": len(train), "val_names": len(val)}
    return report, samples


def write_plots(report: dict, samples: dict[float, list[str]], gen: NameGenerator, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    max_len = max(len(s) for s in gen.train_names) + 5
    bins = np.arange(1, max_len + 2) - 0.5
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist([len(s) for s in gen.train_names], bins=bins, density=True, alpha=0.35, color="k", label="training data")
    for t, names in samples.items():
        ax.hist([len(s) for s in names], bins=bins, density=True, histtype="step", linewidth=1.8, label=f"T = {t}")
    ax.set_xlabel("name length (characters)")
    ax.set_ylabel("share of names")
    ax.set_title("Name lengths: generated vs training data")
    ax.legend()
    paths.append(folder / "lengths.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    rows = report["by_temperature"]
    fig, ax1 = plt.subplots(figsize=(8, 4.5))
    ts = [r["temperature"] for r in rows]
    ax1.plot(ts, [100 * r["new_fraction"] for r in rows], "o-", label="new (%)")
    ax1.plot(ts, [100 * r["unique_fraction"] for r in rows], "s-", label="unique (%)")
    ax1.set_xlabel("temperature")
    ax1.set_ylabel("%")
    ax2 = ax1.twinx()
    ax2.plot(ts, [r["bigram_js_bits"] for r in rows], "d--", color="C3", label="bigram JS (bits)")
    ax2.axhline(report["real_vs_real"]["bigram_js_bits"], color="C3", linestyle=":", label="real vs real")
    ax2.set_ylabel("Jensen-Shannon divergence (bits)")
    lines = ax1.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
    ax1.set_title("Novelty, uniqueness and closeness to the data by temperature")
    paths.append(folder / "temperature.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def to_markdown(report: dict) -> str:
    h = report["heldout"]
    rr = report["real_vs_real"]
    lines = [f"# Names report: {report['model']}", "",
             f"Held-out NLL: {h['nll_nats_per_char']:.4f} nats/char ({h['nll_bits_per_char']:.4f} bits/char, "
             f"perplexity {h['perplexity']:.3f}) on {report['val_names']} validation names.", "",
             f"{report['samples_per_temperature']} samples per temperature, seed {report['seed']}. Real vs real "
             f"(validation vs training): bigram JS {rr['bigram_js_bits']:.4f} bits, length JS "
             f"{rr['length_js_bits']:.4f} bits.", "",
             "| T | new | in train | in validation | unique | mean length | bigram JS (bits) | length JS (bits) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["by_temperature"]:
        lines.append(f"| {r['temperature']} | {r['new']} ({100 * r['new_fraction']:.1f} %) | {r['in_train']} | "
                     f"{r['in_validation']} | {r['unique']} ({100 * r['unique_fraction']:.1f} %) | "
                     f"{r['mean_length']:.2f} | {r['bigram_js_bits']:.4f} | {r['length_js_bits']:.4f} |")
    lines += ["", "Examples at each temperature:", ""]
    for r in report["by_temperature"]:
        lines.append(f"- T = {r['temperature']}: {', '.join(r['examples'])}")
    lines += ["", "![lengths](lengths.png)", "", "![temperature](temperature.png)", ""]
    return "\n".join(lines)


def run_report(model: str | Path | None, n: int = 1000, temperatures: Sequence[float] = TEMPERATURES, seed: int = 0,
               out_dir: str | Path = "outputs/reports", update_card: bool = False) -> tuple[Path, dict]:
    """Write report.json, report.md and PNG plots to <out_dir>/<timestamp>-names/; optionally add to card.json."""
    if n < 1:
        raise OptionError(f"-n must be >= 1, got {n}")
    base = ensure_dir(out_dir)
    gen = NameGenerator.load(model)
    report, samples = build_report(gen, n, temperatures, seed)
    folder = new_folder(base, f"{timestamp()}-names")  # atomic: never a folder another run also took
    write_plots(report, samples, gen, folder)
    atomic_write(folder / "report.json", json.dumps(report, indent=1))
    atomic_write(folder / "report.md", to_markdown(report))
    if update_card:
        update_card_file(gen.folder.path, "report", {
            "heldout": report["heldout"], "real_vs_real": report["real_vs_real"],
            "by_temperature": [{k: v for k, v in r.items() if k != "examples"} for r in report["by_temperature"]],
            "samples_per_temperature": n, "seed": seed})
    return folder, report
