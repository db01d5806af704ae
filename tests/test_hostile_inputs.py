"""Issue 12 items 7-14: bounded work from tiny inputs, no tracebacks, no silent nonsense (fast tests).

The slow, large-scale versions (10,000 fuzzed inputs, per-file time and memory caps) are in bench/fuzz.py.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import mido
import numpy as np
import pytest

from app.core.config import check_range
from app.core.folder import load_model_folder
from app.core.modelconfig import TrainConfig
from app.core.sampling import SamplingOptions
from app.errors import DataError, ModelFolderError, OptionError
from app.music.corpus import _merge, _sha, build_corpus, extract_file, format_summary, load_corpus
from app.music.limits import DEFAULT_LIMITS, PRIMER_LIMITS, ReadLimits
from app.music.melody import ExtractConfig, RawPiece, RawTrack, extract_melodies, quantise, skyline
from app.music.midi_io import read_melody
from app.music.sources import find_files, read_file, SourceFile
from app.names.codec import read_names
from tests.music_fixtures import melody_midi

ROOT = Path(__file__).resolve().parents[1]
CFG = asdict(ExtractConfig())
LONG_ABC = b"X:1\nL:1/8\nK:C\nC99999999 D E F G A B c|"  # the 39-byte tune


def long_note_midi() -> bytes:
    """Resolution 1 tick per quarter, one note 9,999,990 ticks long (the issue's 101-byte file, minus metadata)."""
    mf = mido.MidiFile(ticks_per_beat=1)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    tr.append(mido.MetaMessage("track_name", name="long", time=0))
    tr.append(mido.Message("note_on", note=60, velocity=90, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=9_999_990))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def dense_midi(n: int, same_pitch: bool) -> bytes:
    """n note-ons at tick 0 (one pitch, or cycling pitches), then their note-offs one quarter later."""
    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    for i in range(n):
        tr.append(mido.Message("note_on", note=60 if same_pitch else 40 + i % 60, velocity=90, time=0))
    for i in range(n):
        tr.append(mido.Message("note_off", note=60 if same_pitch else 40 + i % 60, velocity=0,
                               time=480 if i == 0 else 0))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


# --- item 7: bound the work before doing it -------------------------------------------------------------------------
def test_limits_live_in_one_dataclass_with_help_and_bounds():
    import dataclasses

    for f in dataclasses.fields(ReadLimits):
        assert f.metadata["help"] and len(f.metadata["bounds"]) == 2
    with pytest.raises(OptionError, match="max_notes"):
        ReadLimits(max_notes=0)
    with pytest.raises(OptionError, match="finite"):
        ReadLimits(max_piece_quarters=float("inf"))
    assert PRIMER_LIMITS.max_file_bytes < DEFAULT_LIMITS.max_file_bytes


@pytest.mark.parametrize("name,data", [("long.abc", LONG_ABC), ("long.mid", long_note_midi())])
def test_tiny_file_describing_huge_music_is_skipped_quickly(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    t0 = time.perf_counter()
    res = extract_file(str(path), name, CFG)
    assert time.perf_counter() - t0 < 10  # was 51 s and 6.7 GB (ABC); the check is from the note list
    assert res["pieces"] == [] and [s["reason"] for s in res["skipped"]] == ["too long"]
    assert "limit" in res["skipped"][0]["detail"] and "ReadLimits." in res["skipped"][0]["detail"]


def test_long_primer_is_refused_before_any_grid(tmp_path):
    from app.music.generate import MelodyGenerator

    path = tmp_path / "long.mid"
    path.write_bytes(long_note_midi())
    gen = MelodyGenerator.load(ROOT / "models" / "folk")
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="too long"):
        gen.primer_ids(midi=path)
    assert time.perf_counter() - t0 < 5  # was 13 s and 1.37 GB
    big = tmp_path / "big.mid"
    big.write_bytes(b"MThd" + b"\0" * (PRIMER_LIMITS.max_file_bytes + 1))
    with pytest.raises(DataError, match="too large"):
        read_melody(big, limits=PRIMER_LIMITS)


def test_piece_length_is_checked_before_the_grid_is_built():
    piece = RawPiece("p", (RawTrack("t", ((60, 0.0, 1.0), (62, 1.0, 20_000.0))),))
    res = extract_melodies(piece, ExtractConfig(min_notes=1))
    assert res.skip == "too long" and not res.melodies
    ok = extract_melodies(piece, ExtractConfig(min_notes=1), ReadLimits(max_piece_quarters=30_000,
                                                                        max_note_quarters=30_000))
    assert ok.skip is None  # the same piece under a raised limit: proves the limit, not the piece, decides


def test_token_cap_per_file_across_parts(tmp_path):
    tunes = "".join(f"X:{i}\nL:1/4\nK:C\nC D E F G A B c | c B A G F E D C|\n" for i in range(1, 6))
    path = tmp_path / "five.abc"
    path.write_text(tunes)
    limits = ReadLimits(max_tokens_per_file=70)  # each tune is 16 quarters = 64 steps
    res = extract_file(str(path), "five.abc", asdict(ExtractConfig(min_notes=1)), limits=limits)
    assert len(res["pieces"]) == 1 and [s["reason"] for s in res["skipped"]] == ["too many tokens"] * 4
    parts = [extract_file(str(path), "five.abc", asdict(ExtractConfig(min_notes=1)), (lo, lo + 1))
             for lo in range(5)]
    merged = _merge(parts, limits)  # each part alone is under the cap: the file as a whole is not
    assert len(merged["pieces"]) == 1 and len(merged["skipped"]) == 4


def test_too_many_notes_and_tunes_are_bounded(tmp_path):
    path = tmp_path / "dense.mid"
    path.write_bytes(dense_midi(2000, same_pitch=False))
    pieces, skips = read_file(SourceFile(str(path), "dense.mid"), limits=ReadLimits(max_notes=1000))
    assert pieces == [] and skips[0].reason == "too many notes"
    abc = tmp_path / "many.abc"
    abc.write_text("".join(f"X:{i}\nL:1/4\nK:C\nCDEF|\n" for i in range(1, 6)))
    pieces, skips = read_file(SourceFile(str(abc), "many.abc"), limits=ReadLimits(max_tunes_per_file=3))
    assert len(pieces) == 3 and [s.reason for s in skips] == ["too many tunes"]


def test_score_that_makes_music21_work_for_minutes_is_cut_off(tmp_path):
    notes = "".join(f"<note><pitch><step>{s}</step><octave>4</octave></pitch><duration>1</duration></note>"
                    for s in "CDEFGABC")
    xml = ('<?xml version="1.0" encoding="UTF-8"?><score-partwise version="3.1"><part-list><score-part id="P1">'
           '<part-name>Flute</part-name></score-part></part-list><part id="P1"><measure number="1"><attributes>'
           '<divisions>1</divisions><time><beats>9999</beats><beat-type>4</beat-type></time></attributes>'
           f'{notes}</measure></part></score-partwise>')
    path = tmp_path / "wide.xml"
    path.write_text(xml)
    t0 = time.process_time()
    pieces, skips = read_file(SourceFile(str(path), "wide.xml"), limits=ReadLimits(max_parse_seconds=1.0))
    assert time.process_time() - t0 < 10  # music21 alone: minutes (a 9999-beat bar)
    assert pieces == [] and [s.reason for s in skips] == ["too slow"] and "max_parse_seconds" in skips[0].detail


# --- item 8: linear melody reader -----------------------------------------------------------------------------------
@pytest.mark.parametrize("same_pitch", [True, False])
def test_dense_instant_reads_in_linear_time(tmp_path, same_pitch):
    path = tmp_path / "dense.mid"
    path.write_bytes(dense_midi(50_000, same_pitch))  # was 66 s (pretty_midi pairs note-offs by scanning)
    t0 = time.perf_counter()
    res = extract_file(str(path), "dense.mid", asdict(ExtractConfig(min_notes=1)))
    assert time.perf_counter() - t0 < 30, "50,000 notes at one instant: about a second idle (was 66 s)"
    assert len(res["pieces"]) == 1 or res["skipped"]


def _skyline_reference(notes):
    """The rule of `skyline`, written the obvious quadratic way (the previous implementation)."""
    line, sounding = [], []
    for p, s, e in sorted(notes, key=lambda n: (n[1], -n[0])):
        if line and line[-1][1] == s:
            sounding.append((p, e))
            continue
        sounding = [(q, qe) for q, qe in sounding if qe > s and q != p]
        higher = any(q > p for q, _ in sounding)
        sounding.append((p, e))
        if higher:
            continue
        if line and line[-1][2] > s:
            line[-1][2] = s
        line.append([p, s, e])
    return [tuple(n) for n in line]


def test_linear_skyline_matches_the_rule_on_random_polyphony():
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(0, 40))
        notes = [(int(rng.integers(58, 66)), float(on), float(on + d)) for on, d in
                 zip(rng.integers(0, 24, n) / rng.choice([1, 2, 4]), rng.choice([0, 0.1, 0.25, 0.5, 1, 3], n))]
        q = quantise(notes, int(rng.choice([1, 2, 4])))
        assert skyline(q) == _skyline_reference(q)


# --- item 9: names files --------------------------------------------------------------------------------------------
def test_names_file_over_the_cap_is_a_clear_error_before_reading(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:
        f.truncate(65 << 20)  # sparse: above the 64 MiB default without using the disk
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"limit is 67,108,864 bytes"):
        read_names(path)
    assert time.perf_counter() - t0 < 1
    small = tmp_path / "small.txt"
    small.write_text("alpha\nbeta\n" * 10)
    with pytest.raises(DataError, match="limit"):
        read_names(small, max_bytes=50)
    assert read_names(small) == ["alpha", "beta"]


def test_names_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "names.txt"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        read_names(fifo)


# --- item 10: folder walking ----------------------------------------------------------------------------------------
def test_symlink_loops_and_links_out_are_not_followed_and_fifos_not_read(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.mid").write_bytes(melody_midi())
    (src / "sub" / "b.mid").write_bytes(melody_midi())
    os.symlink("..", src / "sub" / "up")  # a loop back into the tree
    os.symlink(str(tmp_path), src / "sub" / "out")  # out of the tree
    os.symlink("a.mid", src / "link.mid")  # a link to a regular file is read
    os.mkfifo(src / "pipe.mid")
    files, skips = find_files([str(src)])
    assert sorted(f.label for f in files) == ["src/a.mid", "src/link.mid", "src/sub/b.mid"]
    assert sorted((s.source, s.reason) for s in skips) == [
        ("pipe.mid", "not a regular file"), ("sub/out", "symlinked folder"), ("sub/up", "symlinked folder")]
    # the FIFO given directly (not through a folder) must not hang the reader either
    result: dict = {}
    th = threading.Thread(target=lambda: result.update(extract_file(str(src / "pipe.mid"), "pipe.mid", CFG)),
                          daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive(), "reading a FIFO blocked"
    assert [s["reason"] for s in result["skipped"]] == ["not a regular file"]


# --- item 11: non-UTF-8 file names ----------------------------------------------------------------------------------
def test_non_utf8_file_name_builds_and_prints(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / os.fsdecode(b"Caf\xe9.mid")).write_bytes(melody_midi())
    (src / "ok.mid").write_bytes(melody_midi())
    assert _sha(os.fsdecode(b"Caf\xe9.mid"))  # was UnicodeEncodeError
    res = build_corpus([str(src)], tmp_path / "out", ExtractConfig(), jobs=1, progress=False)
    assert res.report["pieces"]["kept"] == 2
    format_summary(res).encode("utf-8")  # printable: no lone surrogates
    (tmp_path / "out" / "report.json").read_text(encoding="utf-8")
    corpus = load_corpus(tmp_path / "out")
    names = sorted(m["name"] for m in corpus.train_meta + corpus.val_meta)
    assert names == ["src/Caf\\xe9.mid", "src/ok.mid"]  # the undecodable byte shown as an escape


# --- item 12: model folders validated on load -----------------------------------------------------------------------
def _copy(tmp_path, name):
    dest = tmp_path / name
    shutil.copytree(ROOT / "models" / name, dest)
    return dest


def _edit_json(path, fn):
    data = json.loads(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("edit,match", [
    (lambda c: c["codec"].update(steps_per_quarter=0), r"steps_per_quarter must be in \[1, 96\]"),
    (lambda c: c["codec"].update(steps_per_quarter="four"), "steps_per_quarter must be a whole number"),
    (lambda c: c["codec"].update(time_signature=[6, 7]), "time_signature"),
    (lambda c: c["codec"].update(qpm=float("nan")), "finite"),
    (lambda c: c["model"].update(units="many"), "units must be a number"),
    (lambda c: c["model"].update(units=0), r"units must be in"),
    (lambda c: c.update(domain="poetry"), "poetry"),
])
def test_bad_config_values_are_model_folder_errors(tmp_path, edit, match):
    folder = _copy(tmp_path, "folk")
    _edit_json(folder / "config.json", edit)
    with pytest.raises(ModelFolderError, match=match):
        load_model_folder(folder)


def _edit_weights(folder, fn):
    with np.load(folder / "weights.npz") as z:
        w = {k: z[k] for k in z.files}
    fn(w)
    np.savez(folder / "weights.npz", **w)


@pytest.mark.parametrize("edit,match", [
    # the shipped folk model is a lookback model: its head has V + 4 outputs (tokens and 4 repeat labels)
    (lambda w: w.update({"head/kernel": w["head/kernel"][:, :-1]}), r"head/kernel has shape \(256, 54\), config.json and vocab.json \(51 tokens\) need \(256, 55\)"),
    (lambda w: w["rnn_0/bias"].__setitem__(3, np.nan), "non-finite"),
    (lambda w: w["head/bias"].__setitem__(0, np.inf), "non-finite"),
    (lambda w: w.update({"head/bias": w["head/bias"].astype(np.int32)}), "dtype int32"),
    (lambda w: w.pop("rnn_0/recurrent_kernel"), "missing"),
    (lambda w: w.update(extra=np.zeros(3, np.float32)), "unexpected"),
])
def test_bad_weights_are_model_folder_errors(tmp_path, edit, match):
    from app.music.generate import MelodyGenerator

    folder = _copy(tmp_path, "folk")
    _edit_weights(folder, edit)
    with pytest.raises(ModelFolderError, match=match):
        MelodyGenerator.load(folder)  # the folder check, then the arch's own shape check


@pytest.mark.parametrize("edit,match", [
    (lambda v: v["tokens"].__setitem__(5, 7), "list of strings"),
    (lambda v: v["tokens"].__setitem__(5, "a"), "duplicate"),
    (lambda v: v["tokens"].__setitem__(5, "ab"), "single characters"),
    (lambda v: v.update(n_special="3"), "n_special"),
])
def test_bad_names_vocab_is_a_model_folder_error(tmp_path, edit, match):
    folder = _copy(tmp_path, "dinos")
    _edit_json(folder / "vocab.json", edit)
    with pytest.raises(ModelFolderError, match=match):
        load_model_folder(folder)


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "card.json", "names_train.txt"])
def test_non_utf8_text_in_a_model_folder_is_a_model_folder_error(tmp_path, name):
    from app.names.generator import NameGenerator

    folder = _copy(tmp_path, "dinos")
    (folder / name).write_bytes(b"\xff\xfe caf\xe9 \x81")
    with pytest.raises(ModelFolderError, match="UTF-8"):
        NameGenerator.load(folder)


def test_shipped_models_pass_full_validation():
    assert load_model_folder(ROOT / "models" / "folk", domain="music").vocab.size == 51
    assert load_model_folder(ROOT / "models" / "dinos", domain="names").vocab.kind == "chars"


# --- item 13: numbers finite and in range ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "3", None, True])
def test_check_range_rejects_non_finite_and_non_numbers(value):
    with pytest.raises(OptionError):
        check_range("x", value, 0, 10)


def test_configs_reject_nan_and_inf():
    with pytest.raises(OptionError, match="learning.rate"):
        TrainConfig(learning_rate=math.nan)
    with pytest.raises(OptionError, match="temperature"):
        SamplingOptions(temperature=math.inf)
    with pytest.raises(OptionError, match="temperature"):
        SamplingOptions(temperature=math.nan)
    with pytest.raises(OptionError, match="top-p"):
        SamplingOptions(top_p=math.nan)
    with pytest.raises(OptionError, match="top-k"):
        SamplingOptions(top_k=math.inf)
    with pytest.raises(OptionError, match="split_silence"):
        ExtractConfig(split_silence=math.nan)


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("args,match", [
    (["names", "train", "--lr", "nan", "--epochs", "1"], "learning-rate"),
    (["names", "generate", "--temperature", "inf"], "temperature"),
    (["names", "generate", "--top-p", "nan"], "top-p"),
    (["music", "generate", "--temperature", "nan", "--out-dir", "{tmp}"], "temperature"),
])
def test_cli_refuses_nan_and_inf_with_a_message(tmp_path, args, match):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if args[:2] == ["names", "train"]:
        args += ["--out", str(tmp_path / "m")]
    proc = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-800:]
    assert match in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


# --- item 14: truncated MIDI ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [20, 40, -3])
def test_truncated_midi_says_truncated_and_where(tmp_path, cut):
    data = melody_midi()
    path = tmp_path / "cut.mid"
    path.write_bytes(data[:cut])
    res = extract_file(str(path), "cut.mid", CFG)
    skip = res["skipped"][0]
    assert skip["reason"] == "truncated" and "byte" in skip["detail"], skip
