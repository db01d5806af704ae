"""Music quality report: held-out halves, length matching, report contents, plots, CLI and card (no TensorFlow).

The model is a small random-weight LSTM run by the numpy stepper; the corpus is built from MIDI files written here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.core.folder import ModelFolder
from app.core.modelconfig import ModelConfig
from app.music.features import FEATURES, FORM_FEATURES, set_features
from app.music.generate import MelodyGenerator
from app.music.report import (ORACLE_SETS, _distances, build_report, generate_melodies, heldout_halves,
                              oracle_sets, piece_bars, real_set, target_lengths, to_markdown, write_plots)
from tests.music_fixtures import TUNE, melody_midi, write

UNITS = 12


def random_weights(vocab: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"rnn_0/kernel": rng.normal(0, 0.5, (vocab, 4 * UNITS)),
            "rnn_0/recurrent_kernel": rng.normal(0, 0.5, (UNITS, 4 * UNITS)),
            "rnn_0/bias": np.zeros(4 * UNITS), "head/kernel": rng.normal(0, 1.0, (UNITS, vocab)),
            "head/bias": np.r_[2.0, 0.5, np.zeros(vocab - 2)]}  # mostly holds, like real melodies


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    from app.music.corpus import build_corpus

    root = tmp_path_factory.mktemp("report")
    src = root / "src"
    for k in range(12):  # the tune in three keys, each with its own ending
        notes = [(p + k % 3, on, off) for p, on, off in TUNE]
        notes += [(p + 2 + k, on + 18, off + 18) for p, on, off in TUNE[: 4 + k % 6]]
        write(src, f"song{k:02d}.mid", melody_midi(notes))
    out = root / "corpus"
    build_corpus([str(src)], out, val_fraction=0.34, seed=0, jobs=1, progress=False)
    return out


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    from app.music.corpus import load_corpus

    return load_corpus(corpus_dir)


@pytest.fixture(scope="module")
def model(corpus) -> MelodyGenerator:
    return random_generator(corpus)


def random_generator(corpus, steps_per_quarter: int = 4) -> MelodyGenerator:
    """A MelodyGenerator over random weights, loaded from an in-memory folder (no files, no TensorFlow)."""
    cfg = ModelConfig(cell="lstm", units=UNITS, layers=1, input="onehot")
    config = {"domain": "music", "codec": {"steps_per_quarter": steps_per_quarter, "time_signature": [4, 4]}}
    return MelodyGenerator(ModelFolder(Path("random-model"), corpus.codec.vocab, cfg, config, {},
                                       random_weights(corpus.codec.size)))


def test_heldout_halves_split_by_piece_and_lengths_match_half_a(corpus):
    a, b = heldout_halves(corpus, seed=0)
    assert len(a.events) + len(b.events) == len(corpus.val) and a.events and b.events
    assert not set(a.names) & set(b.names)
    assert heldout_halves(corpus, seed=0)[0].names == a.names
    lengths = [len(e) for e in a.events]
    got = target_lengths(lengths, 2 * len(lengths) + 1, seed=0)
    assert sorted(got[:len(lengths)].tolist()) == sorted(lengths)  # every length of A once, then again
    assert sorted(got[len(lengths):2 * len(lengths)].tolist()) == sorted(lengths)


def test_generation_is_seeded_and_has_the_requested_lengths(model):
    lengths = [5, 40, 17, 70, 3]
    one = generate_melodies(model, lengths, 1.0, seed=4)
    two = generate_melodies(model, lengths, 1.0, seed=4)
    assert [len(r) for r in one] == lengths
    assert all(np.array_equal(x, y) for x, y in zip(one, two))
    assert not all(np.array_equal(x, y) for x, y in zip(one, generate_melodies(model, lengths, 1.0, seed=5)))


@pytest.mark.slow  # a whole report with plots
def test_report_contents_and_plots(model, corpus, tmp_path):
    report, samples = build_report(model, corpus, n=6, temperatures=(0.8, 1.0), seed=0)
    assert [r["temperature"] for r in report["by_temperature"]] == [0.8, 1.0]
    rr = report["real_vs_real"]
    assert set(rr["distances"]) == set(FEATURES)
    for r in report["by_temperature"]:
        assert r["melodies"] == 6 and set(r["distances"]) == set(FEATURES) == set(r["ratios"])
        for f in FEATURES:
            d = r["distances"][f]
            assert d is None or 0 <= d <= 1
            if d is not None and rr["distances"][f]:
                assert r["ratios"][f] == pytest.approx(d / rr["distances"][f])
        c = r["copy"]
        assert c["ngram_n"] == 8 and c["longest_run_notes_max"] >= c["longest_run_notes_median"] >= 0
        assert c["ngram_copy_rate"] is None or 0 <= c["ngram_copy_rate"] <= 1
        assert len(r["copy_per_melody"]["longest_run_notes"]) == 6
    # held-out tunes are variations of the training tunes: the yardstick copies a lot
    assert rr["copy"]["ngram_copy_rate"] > 0.3
    a, b = heldout_halves(corpus, 0)
    real = set_features(a.events + b.events, 4, a.bar_steps + b.bar_steps)
    assert rr["means"]["in_scale_rate"] == pytest.approx(np.nanmean(real["in_scale_rate"]))
    g = report["goals"]
    assert g["temperature"] == 1.0 and len(g["features_within_ratio"]) + len(g["features_over_ratio"]) <= len(FEATURES)
    # form, classifier and copying against held-out real tunes
    assert set(rr["form"]) == {"repetition", *FORM_FEATURES}
    assert rr["form"]["repetition"] == pytest.approx(np.nanmean(real["repetition"]))
    assert rr["form"]["bar_repeat_1"] == pytest.approx(np.nanmean(real["bar_repeat_1"]))
    floor = rr["classifier"]
    assert 0 <= floor["accuracy"] <= 1 and floor["n_per_class"] == min(len(a.events), len(b.events))
    for r in report["by_temperature"]:
        assert set(r["form"]) == {"repetition", *FORM_FEATURES}
        assert r["classifier"]["n_per_class"] == min(6, len(b.events)) and 0 <= r["classifier"]["accuracy"] <= 1
        assert r["classifier"]["feature_names"][-len(FORM_FEATURES):] == list(FORM_FEATURES)
        assert list(r["classifier"]["weights"]) == r["classifier"]["feature_names"]
    row = report["by_temperature"][1]
    assert g["classifier_accuracy"] == row["classifier"]["accuracy"] and g["classifier_floor"] == floor["accuracy"]
    assert g["repetition_generated"] == row["means"]["repetition"]
    assert g["repetition_real"] == rr["means"]["repetition"]
    assert g["ngram_copy_rate_real"] == rr["copy"]["ngram_copy_rate"]
    assert g["phrase_copy_rate"] == row["copy"]["phrase_copy_rate"]
    assert g["ngram_copy_vs_real_met"] == (row["copy"]["ngram_copy_rate"] <= rr["copy"]["ngram_copy_rate"])
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN anywhere
    md = to_markdown(report)
    assert md.startswith("# Music report") and "| in_scale_rate |" in md and "## Goals at T = 1.0" in md
    assert "| classifier accuracy |" in md and "| bars equal to the bar 4 back |" in md
    assert "![bar self-similarity](selfsim.png)" in md and "classifier accuracy <= 65 %" in md
    oracle = rr["oracle"]  # real training tunes scored like generated melodies
    assert oracle["sets"] == ORACLE_SETS and len(oracle["within"]) == ORACLE_SETS
    assert oracle["pieces"] == min(6, len(corpus.train)) and all(0 <= c <= len(FEATURES) for c in oracle["within"])
    assert g["features_within_ratio_oracle"] == oracle["within"]
    assert "real training tunes in place of generated melodies" in md
    paths = write_plots(report, samples, tmp_path)
    assert {p.name for p in paths} == {"features.png", "histograms.png", "distances.png", "tradeoff.png",
                                       "pianorolls.png", "selfsim.png", "form.png"}
    assert all(p.stat().st_size > 1000 for p in paths)
    assert len(list((tmp_path / "rolls").glob("*.png"))) == 2 * min(3, len(samples["real_a"].events))


def test_the_oracle_scores_training_tunes_against_half_b(corpus):
    a, b = heldout_halves(corpus, seed=0)
    fb = set_features(b.events, 4, b.bar_steps)
    yard = _distances(set_features(a.events, 4, a.bar_steps), fb)
    # n above the training pieces: every set is the whole training set, so each set scores as that set does
    res = oracle_sets(corpus, fb, yard, n=10 * len(corpus.train), rng=np.random.default_rng(3), sets=3)
    train = real_set(corpus, corpus.train, corpus.train_meta)
    dist = _distances(set_features(train.events, 4, train.bar_steps), fb)
    want = {k: dist[k] / yard[k] for k in FEATURES if dist[k] is not None and yard[k]}
    assert res["pieces"] == len(corpus.train) and res["sets"] == 3
    assert res["within"] == [sum(v <= 1.5 for v in want.values())] * 3
    assert {k: res["median_ratios"][k] for k in want} == pytest.approx(want)
    assert res["sets_over_goal"] == {k: 3 * (k in want and want[k] > 1.5) for k in FEATURES}
    # fewer pieces than the training set: seeded draws, so the same generator state gives the same sets
    one = oracle_sets(corpus, fb, yard, n=3, rng=np.random.default_rng(5), sets=4)
    assert one == oracle_sets(corpus, fb, yard, n=3, rng=np.random.default_rng(5), sets=4) and one["pieces"] == 3


def test_real_pieces_are_measured_by_their_own_metre(model, corpus):
    import dataclasses

    assert piece_bars({"time_signature": (6, 8)}, 4) == 12
    assert piece_bars({"time_signature": (4, 4), "metre": [(0, 3, 4)]}, 4) == 12
    assert piece_bars({"metre": [[0, 3, 4], [24, 4, 4]]}, 4) == [(0, 3, 4), (24, 4, 4)]
    assert piece_bars({}, 4) == 16
    assert piece_bars({"metre": [[-4, 2, 4]]}, 4) == [(-4, 2, 4)]  # a pickup: bar lines at 4, 12, 20 ...
    c34 = dataclasses.replace(corpus, val_meta=[{**m, "time_signature": (3, 4), "metre": [[0, 3, 4]]}
                                                for m in corpus.val_meta])
    a, b = heldout_halves(c34, 0)
    assert set(a.bar_steps + b.bar_steps) == {12}
    r34 = build_report(model, c34, n=2, temperatures=(1.0,), seed=0)[0]
    r44 = build_report(model, corpus, n=2, temperatures=(1.0,), seed=0)[0]
    real34 = set_features(a.events + b.events, 4, 12)
    assert r34["real_vs_real"]["form"]["bar_repeat_1"] == pytest.approx(np.nanmean(real34["bar_repeat_1"]))
    assert r34["real_vs_real"]["copy"]["phrases"] != r44["real_vs_real"]["copy"]["phrases"]  # 12- vs 16-step bars
    changes = dataclasses.replace(corpus, val_meta=[{**m, "metre": [(0, 4, 4), (32, 3, 4)]} for m in corpus.val_meta])
    a, b = heldout_halves(changes, 0)
    assert a.bar_steps[0] == [(0, 4, 4), (32, 3, 4)]
    rc = build_report(model, changes, n=2, temperatures=(1.0,), seed=0)[0]
    real = set_features(a.events + b.events, 4, a.bar_steps + b.bar_steps)
    assert rc["real_vs_real"]["form"]["bar_repeat_2"] == pytest.approx(np.nanmean(real["bar_repeat_2"]), nan_ok=True)


def test_bad_options(model, corpus):
    from app.errors import OptionError

    with pytest.raises(OptionError, match="-n"):
        build_report(model, corpus, n=0)
    with pytest.raises(OptionError, match="temperatures"):
        build_report(model, corpus, n=2, temperatures=(0.0,))
    other = random_generator(corpus, steps_per_quarter=12)
    with pytest.raises(OptionError, match="steps per quarter"):
        build_report(other, corpus, n=2)


class _StubKeras:
    """Stands in for the Keras model when writing a folder: the report reads only weights.npz (numpy path)."""

    def save(self, path):
        Path(path).write_bytes(b"placeholder: this test never loads model.keras")


@pytest.mark.slow  # a whole report with plots
def test_cli_writes_report_and_updates_the_card(corpus, corpus_dir, tmp_path, capsys):
    from app.core.folder import load_model_folder, save_model_folder

    folder = tmp_path / "m"
    cfg = {"domain": "music", "model": {"cell": "lstm", "units": UNITS, "layers": 1, "input": "onehot"},
           "codec": {"min_pitch": corpus.codec.min_pitch, "max_pitch": corpus.codec.max_pitch,
                     "steps_per_quarter": 4, "time_signature": [4, 4], "qpm": 120.0}}
    save_model_folder(folder, keras_model=_StubKeras(), weights=random_weights(corpus.codec.size), vocab=corpus.vocab,
                      config=cfg, card={"name": "m", "corpus": {"path": str(corpus_dir)}})
    out = tmp_path / "reports"
    code = main(["music", "report", "--model", str(folder), "-n", "4", "--temperatures", "1.0,1.2",
                 "--out-dir", str(out), "--update-card", "--quiet"])
    assert code == 0
    (rep,) = out.iterdir()
    assert rep.name.endswith("-music")
    report = json.loads((rep / "report.json").read_text())
    assert report["corpus"] == str(corpus_dir)  # taken from the model card
    assert (rep / "report.md").read_text().startswith("# Music report")
    assert len(list(rep.glob("*.png"))) >= 3 and list((rep / "examples").glob("*.mid"))
    card = load_model_folder(folder).card
    assert card["report"]["samples_per_temperature"] == 4
    assert [r["temperature"] for r in card["report"]["by_temperature"]] == [1.0, 1.2]
    assert "copy_per_melody" not in card["report"]["by_temperature"][0]
    assert card["report"]["goals"]["classifier_floor"] == report["real_vs_real"]["classifier"]["accuracy"]
    assert card["report"]["by_temperature"][0]["classifier"]["accuracy"] is not None
    assert set(card["report"]["real_vs_real"]["form"]) == {"repetition", *FORM_FEATURES}
    assert (rep / "selfsim.png").stat().st_size > 1000 and "selfsim.png" in (rep / "report.md").read_text()
    printed = capsys.readouterr().out
    assert "T=1.0:" in printed and "report written to" in printed and "classifier accuracy" in printed

    for args, message in ((["-n", "0"], "-n must be"), (["--temperatures", "a,b"], "--temperatures"),
                          (["--corpus", str(tmp_path / "nope")], "no corpus")):
        assert main(["music", "report", "--model", str(folder), "--out-dir", str(out), "--quiet", *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert main(["music", "report", "--model", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def lookback_generator(corpus) -> MelodyGenerator:
    """A random-weight `lookback` model (metre-conditioned), loaded from an in-memory folder."""
    from app.music.archs.base import get_arch
    from app.music.archs.lookback import input_size

    arch = get_arch("lookback")
    settings = arch.make_settings({"lookbacks": [1, 2]})
    V, rng = corpus.codec.size, np.random.default_rng(3)
    w = {"rnn_0/kernel": rng.normal(0, 0.5, (input_size(settings, V), 4 * UNITS)),
         "rnn_0/recurrent_kernel": rng.normal(0, 0.5, (UNITS, 4 * UNITS)), "rnn_0/bias": np.zeros(4 * UNITS),
         "head/kernel": rng.normal(0, 1.0, (UNITS, V + 2)), "head/bias": np.r_[2.0, 0.5, np.zeros(V)]}
    config = {"domain": "music", "arch": {"name": "lookback", "settings": {"lookbacks": [1, 2]}},
              "codec": {"steps_per_quarter": 4, "time_signature": [4, 4]}}
    cfg = ModelConfig(cell="lstm", units=UNITS, layers=1, input="onehot")
    return MelodyGenerator(ModelFolder(Path("random-lookback"), corpus.codec.vocab, cfg, config, {}, w))


def test_a_metre_conditioned_model_writes_the_held_out_metres(model, corpus, tmp_path):
    import dataclasses

    metres = [(6, 8), (3, 4), (2, 4)]
    mixed = dataclasses.replace(corpus, val_meta=[{**m, "metre": [[0, *metres[k % 3]]]}
                                                  for k, m in enumerate(corpus.val_meta)])
    a, _ = heldout_halves(mixed, 0)
    lb = lookback_generator(corpus)
    assert lb.metre_conditioned and not model.metre_conditioned
    report, samples = build_report(lb, mixed, n=6, temperatures=(1.0,), seed=0)
    want = [a.metres[k] for k in np.resize(np.random.default_rng(0).permutation(len(a.events)), 6)]
    assert samples["generated_metres"] == want
    assert samples["generated_bar_steps"] == [{(6, 8): 12, (3, 4): 12, (2, 4): 8}[m] for m in want]
    assert sum(report["generated_metres"].values()) == 6 and "4/4" not in report["generated_metres"]
    # the same lengths as the half-A pieces they follow, and each melody sampled in its own metre
    ids = generate_melodies(lb, [24, 24], 1.0, seed=1, metres=[(6, 8), (2, 4)])
    assert [len(r) for r in ids] == [24, 24]
    six = generate_melodies(lb, [24], 1.0, seed=1, metres=[(6, 8)])[0]
    two = generate_melodies(lb, [24], 1.0, seed=1, metres=[(2, 4)])[0]
    assert not np.array_equal(six, two)  # the metre is an input of the model
    # a basic model knows one metre: its melodies all use it
    rb, sb = build_report(model, mixed, n=4, temperatures=(1.0,), seed=0)
    assert rb["generated_metres"] == {"4/4": 4} and set(sb["generated_bar_steps"]) == {16}
    write_plots(report, samples, tmp_path)
    assert (tmp_path / "selfsim.png").stat().st_size > 0
