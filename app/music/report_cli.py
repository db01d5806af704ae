"""`python -m app music report`: quality report of a melody model (features vs held-out tunes, copying, plots).

Only argparse at import time; the handler imports numpy/matplotlib (never TensorFlow).
"""

from __future__ import annotations

from app.core.options import parse_temperatures


def register(sub) -> None:
    r = sub.add_parser("report", help="quality report: features vs held-out tunes, copying, plots, by temperature")
    r.add_argument("--model", help="model folder (default: the shipped models/folk, see app/core/paths.py)")
    r.add_argument("--corpus", help="corpus folder (default: the one in the model card, else the default corpus, "
                                    "built on first use)")
    r.add_argument("-n", type=int, default=200, help="generated melodies per temperature (default 200)")
    r.add_argument("--temperatures", default="0.8,1.0,1.2", help="comma-separated (default 0.8,1.0,1.2)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out-dir", default="outputs/reports", help="reports go to OUT_DIR/<timestamp>-music/")
    r.add_argument("--update-card", action="store_true", help="add the figures to the model's card.json")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_report)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def cmd_report(args) -> int:
    import sys

    from app.music.report import run_report

    temps = parse_temperatures(args.temperatures)
    folder, report = run_report(args.model, args.corpus, args.n, temps, args.seed, args.out_dir, args.update_card,
                                progress=not args.quiet)
    rr = report["real_vs_real"]
    print(f"held-out real: in-scale {_pct(rr['means']['in_scale_rate'])}, {report['ngram_n']}-grams found in "
          f"training {_pct(rr['copy']['ngram_copy_rate'])}, longest copied run {rr['copy']['longest_run_notes_max']} "
          f"notes")
    for r in report["by_temperature"]:
        ratios = [v for v in r["ratios"].values() if v is not None]
        within = sum(v <= 1.5 for v in ratios)
        c = r["copy"]
        print(f"T={r['temperature']}: {within}/{len(ratios)} features within 1.5x real vs real "
              f"(median ratio {sorted(ratios)[len(ratios) // 2] if ratios else float('nan'):.2f}), in-scale "
              f"{_pct(r['means']['in_scale_rate'])}, {report['ngram_n']}-grams found in training "
              f"{_pct(c['ngram_copy_rate'])}, longest copied run {c['longest_run_notes_max']} notes")
        print(f"  form: repetition {_num(r['form']['repetition'])} (real {_num(rr['form']['repetition'])}), "
              f"4-bar phrases found in training {_pct(c['phrase_copy_rate'])} (real "
              f"{_pct(rr['copy']['phrase_copy_rate'])}), classifier accuracy {_pct(r['classifier']['accuracy'])} "
              f"(real vs real {_pct(rr['classifier']['accuracy'])})")
    if args.update_card:
        print(f"figures added to {report.get('model', args.model)}/card.json", file=sys.stderr)
    print(f"report written to {folder}")
    return 0
