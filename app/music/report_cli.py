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
    if _is_poly(args.model):
        return _poly_report(args, temps)
    folder, report = run_report(args.model, args.corpus, args.n, temps, args.seed, args.out_dir, args.update_card,
                                progress=not args.quiet)
    rr = report["real_vs_real"]
    print(f"held-out real: in-scale {_pct(rr['means']['in_scale_rate'])}, {report['ngram_n']}-grams found in "
          f"training {_pct(rr['copy']['ngram_copy_rate'])}, longest copied run {rr['copy']['longest_run_notes_max']} "
          f"notes")
    oracle = rr.get("oracle", {}).get("within")
    if oracle:
        print(f"real training tunes in place of generated melodies ({len(oracle)} sets, what a perfect model would "
              f"score): {', '.join(map(str, oracle))} features within 1.5x real vs real")
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


def _is_poly(model) -> bool:
    from app.core.folder import load_model_folder
    from app.core.paths import default_model

    folder = load_model_folder(default_model("music") if model is None else model, domain="music")
    return folder.config.get("codec", {}).get("mode") == "poly"


def _poly_report(args, temps) -> int:
    """A polyphonic model: polyphony features vs held-out pieces (app/music/polyreport.py)."""
    from app.music.polyreport import run_report

    folder, report = run_report(args.model, args.corpus, args.n, temps, args.seed, args.out_dir)
    h = report["heldout"]
    print(f"held-out real: {h['sounding_per_step']:.2f} notes sounding per step, in-scale "
          f"{_pct(h['in_scale_rate'])}, voice range {h['voice_range']:.1f} semitones")
    for r in report["by_temperature"]:
        g = r["generated"]
        print(f"T={r['temperature']}: {g['sounding_per_step']:.2f} notes sounding per step "
              f"(x{r['sounding_ratio']:.2f} held-out), in-scale {_pct(g['in_scale_rate'])} "
              f"({r['in_scale_points']:+.1f} points), voice range {g['voice_range']:.1f}, pitch-class JS "
              f"{r['pitch_class_js_bits']:.4f} bits (real vs real {r['real_vs_real_js_bits']:.4f})")
    print(f"report written to {folder}")
    return 0
