"""Corpus builder: mixed folders, counts, cache, split by piece, atomic writes, load_corpus, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main as cli_main
from app.errors import DataError
from app.music.corpus import build_corpus, format_summary, load_corpus
from app.music.melody import ExtractConfig
from tests.music_fixtures import ABC_SYNTAX_ERROR, ABC_TWO_TUNES, TUNE, bad_files, melody_midi, write


def _good_folder(root, n_midi: int = 6):
    for k in range(n_midi):
        notes = [(p + k % 5, on, off) for p, on, off in TUNE]
        write(root, f"midi/song{k}.mid", melody_midi(notes, qpm=90 + 10 * k))
    write(root, "abc/two.abc", ABC_TWO_TUNES + "\n" + ABC_SYNTAX_ERROR.replace("X:1", "X:3"))
    return root


def _mixed_folder(root):
    _good_folder(root)
    for name, (data, _) in bad_files().items():
        write(root, f"bad/{name}", data)
    write(root, "README.txt", "not music")
    return root


@pytest.mark.slow  # a process pool (jobs=2)
def test_mixed_folder_builds_with_the_right_counts(tmp_path):
    src, out = _mixed_folder(tmp_path / "mixed"), tmp_path / "out"
    res = build_corpus([str(src)], out, ExtractConfig(split_silence=0), val_fraction=0.25, seed=1, jobs=2,
                       progress=False)
    r = res.report
    assert not res.cached and res.parsed_files == 6 + 1 + 7
    # pieces read: 6 midi + 3 ABC tunes (one broken) + 6 bad MIDI files (broken.abc is 1 tune)
    assert r["pieces"] == {"read": 6 + 3 + 7, "kept": 8, "segments": 8}
    assert r["skipped"]["counts"] == {"unreadable": 2, "drums only": 1, "empty file": 1, "no notes": 1,
                                      "not MIDI": 1, "too long": 1, "truncated": 1, "unsupported file type": 1}
    assert r["skipped"]["total"] == len(r["skipped"]["items"]) == 9
    reasons = {s["source"].split("/")[-1]: s["reason"] for s in r["skipped"]["items"]}
    for name, (_, reason) in bad_files().items():
        assert reasons[name if name != "broken.abc" else "broken.abc#X:1"] == reason
    assert reasons["two.abc#X:3"] == "unreadable" and reasons["README.txt"] == "unsupported file type"
    sp = r["split"]
    assert (sp["train_pieces"], sp["val_pieces"]) == (6, 2)
    assert sp["train_tokens"] + sp["val_tokens"] == r["tokens"] > 0
    assert sum(r["vocabulary"]["usage"].values()) == r["tokens"]
    assert json.loads((out / "report.json").read_text()) == r
    assert r["content_hash"]["build"] and not list(out.glob(".*"))  # no temporary files left behind
    assert (out / "corpus.npz").stat().st_mode & 0o044  # readable by others, like any output

    c = load_corpus(out)
    assert len(c.train) == 6 and len(c.val) == 2 and all(a.dtype == np.int32 for a in c.train + c.val)
    assert not {m["name"] for m in c.train_meta} & {m["name"] for m in c.val_meta}
    assert sum(len(a) for a in c.train + c.val) == r["tokens"]
    names = {m["name"] for m in c.train_meta + c.val_meta}
    assert f"{src.name}/abc/two.abc#X:1" in names and f"{src.name}/midi/song3.mid" in names
    meta = next(m for m in c.train_meta + c.val_meta if m["name"].endswith("song3.mid"))
    assert (meta["qpm"], meta["time_signature"], meta["steps_per_quarter"]) == (120.0, (4, 4), 4)
    song = c.train[[m["name"] for m in c.train_meta].index(meta["name"])] if meta in c.train_meta else \
        c.val[[m["name"] for m in c.val_meta].index(meta["name"])]
    assert [p for p, _, _ in c.codec.decode(song).notes()][:3] == [70, 72, 74]  # TUNE + 3 semitones
    x, y = c.window_ids(tx=16, stride=8)
    assert x.shape[1] == 16 and (x[:, 1:] == y[:, :-1]).all()
    assert "skipped: 9" in format_summary(res)

    serial = build_corpus([str(src)], tmp_path / "out1", ExtractConfig(split_silence=0), val_fraction=0.25,
                          seed=1, jobs=1, progress=False)
    assert {k: v for k, v in serial.report.items() if k != "content_hash"} == \
           {k: v for k, v in r.items() if k != "content_hash"}


def test_second_build_is_cached_and_a_changed_file_is_reparsed(tmp_path):
    src, out = _good_folder(tmp_path / "src"), tmp_path / "out"
    first = build_corpus([str(src)], out, val_fraction=0.2, jobs=1, progress=False)
    again = build_corpus([str(src)], out, val_fraction=0.2, jobs=1, progress=False)
    assert again.cached and again.report == first.report and again.parsed_files == 0
    write(src, "midi/song0.mid", melody_midi([(p + 1, a, b) for p, a, b in TUNE]))
    changed = build_corpus([str(src)], out, val_fraction=0.2, jobs=1, progress=False)
    assert not changed.cached and changed.parsed_files == 1
    assert changed.report["content_hash"] != first.report["content_hash"]
    other_seed = build_corpus([str(src)], out, val_fraction=0.2, seed=5, jobs=1, progress=False)
    assert not other_seed.cached and other_seed.parsed_files == 0  # per-file cache reused
    cached_entries = list((out / "cache" / "files").glob("*.json"))
    assert len(cached_entries) == 7  # old entry of the changed file pruned


def test_split_is_by_piece_and_deterministic(tmp_path):
    src = tmp_path / "src"
    for k in range(20):
        # silences split every file into 2 segments: both must land on the same side
        notes = [(p + k % 7, on, off) for p, on, off in TUNE] + [(60 + k % 5, 30 + i, 31 + i) for i in range(8)]
        write(src, f"s{k:02}.mid", melody_midi(notes))
    builds = [load_corpus(build_corpus([str(src)], tmp_path / f"o{seed}{k}", val_fraction=0.3, seed=seed, jobs=1,
                                       progress=False).out) for seed, k in ((0, 0), (0, 1), (9, 0))]
    for c in builds:
        assert len(c.train) + len(c.val) == 40
        assert not {m["name"] for m in c.train_meta} & {m["name"] for m in c.val_meta}
        assert len({m["name"] for m in c.val_meta}) == 6
    val = [sorted(m["name"] for m in c.val_meta) for c in builds]
    assert val[0] == val[1] and val[0] != val[2]


def test_augmentation_only_on_training_pieces(tmp_path):
    src = _good_folder(tmp_path / "src")
    res = build_corpus([str(src)], tmp_path / "out", ExtractConfig(augment=2), val_fraction=0.25, jobs=1,
                       progress=False)
    c = load_corpus(res.out)
    originals = [m for m in c.train_meta if m["shift"] == 0]
    assert {m["shift"] for m in c.train_meta} == {-2, -1, 0, 1, 2} and all(m["shift"] == 0 for m in c.val_meta)
    assert len(c.train) == 5 * len(originals) == res.report["split"]["augmented_segments"] * 5 // 4
    up = c.train[[i for i, m in enumerate(c.train_meta) if m["shift"] == 2][0]]
    base = c.train[[i for i, m in enumerate(c.train_meta) if m["shift"] == 0][0]]
    assert ((up - base)[base >= 2] == 2).all()


@pytest.mark.slow  # a process pool (jobs=2)
@pytest.mark.parametrize("setup,expected", [
    ("empty", r"no melodies kept .*0 supported file\(s\) found\); skipped by reason: none"),
    ("unsupported", r"0 supported file\(s\) found\); skipped by reason: unsupported file type: 2"),
    ("all_bad", r"7 supported file\(s\) found\); skipped by reason: drums only: 1, empty file: 1, no notes: 1, "
                r"not MIDI: 1, too long: 1, truncated: 1, unreadable: 1"),
])
def test_a_build_that_keeps_nothing_fails_clearly_and_writes_no_corpus(tmp_path, setup, expected):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    if setup == "unsupported":
        write(src, "a.txt", "x")
        write(src, "b.wav", b"RIFF")
    if setup == "all_bad":
        for name, (data, _) in bad_files().items():
            write(src, name, data)
    with pytest.raises(DataError, match=expected):
        build_corpus([str(src)], out, jobs=2, progress=False)
    assert not (out / "corpus.npz").exists() and not (out / "report.json").exists()


def test_interrupted_write_leaves_no_partial_corpus(tmp_path, monkeypatch):
    src, out = _good_folder(tmp_path / "src"), tmp_path / "out"

    def broken_savez(f, **arrays):
        f.write(b"half a corpus")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        build_corpus([str(src)], out, jobs=1, progress=False)
    assert not (out / "corpus.npz").exists() and not list(out.glob(".corpus.*"))


def test_cli_builds_and_reports_errors_in_one_line(tmp_path, capsys):
    src, out = _good_folder(tmp_path / "src"), tmp_path / "out"
    assert cli_main(["music", "corpus", "--source", str(src), "--out", str(out), "--quiet", "--jobs", "1",
                     "--transpose", "C"]) == 0
    text = capsys.readouterr().out
    assert "pieces read 9, kept 8" in text and "skipped: 1 (unreadable 1)" in text
    assert load_corpus(out).config.transpose == "C"
    assert cli_main(["music", "corpus", "--source", str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: source") and "does not exist" in err[0]
    assert cli_main(["music", "corpus", "--source", str(src), "--out", str(out), "--min-pitch", "60",
                     "--max-pitch", "62"]) == 2


def test_corpus_for_prefers_the_given_then_the_recorded_then_builds_the_default(tmp_path, monkeypatch):
    from app.core import paths
    from app.music import corpus as corpus_mod

    recorded = tmp_path / "recorded"
    recorded.mkdir()
    (recorded / "corpus.npz").write_bytes(b"x")
    card = {"data": {"path": str(recorded)}}
    assert corpus_mod.corpus_for(tmp_path / "given", card) == tmp_path / "given"
    assert corpus_mod.corpus_for(None, card) == recorded
    assert corpus_mod.corpus_for(None, {"corpus": {"path": str(recorded)}}) == recorded  # cards before schema 2
    built = []
    default = tmp_path / "home" / "data" / "corpora" / "default"
    monkeypatch.setattr(paths, "default_corpus", lambda: default)
    monkeypatch.setattr(corpus_mod, "build_corpus", lambda sources, out, **kw: built.append((tuple(sources), out)))
    assert corpus_mod.corpus_for(None, {"data": {"path": str(tmp_path / "gone")}}, progress=False) == default
    assert built == [(tuple(corpus_mod.DEFAULT_SOURCES), default)]  # built on first use, from the default sources
