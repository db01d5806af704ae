"""`music corpus --mode poly` (issue 14): every pitched track kept whole, chords included; mode recorded."""

from __future__ import annotations

import json

import pytest

from app.cli import main as cli_main
from app.errors import OptionError
from app.music.corpus import build_corpus, load_corpus
from app.music.melody import ExtractConfig
from app.music.polycodec import PolyCodec, canonical
from tests.music_fixtures import TUNE, band_tracks, midi_bytes, write

PIANO_RH = [n for p, on, off in TUNE for n in ((p, on, off), (p - 4, on, off))]  # melody in thirds
PIANO_LH = [(43 + (k % 3) * 2, k * 2.0, k * 2.0 + 2.0) for k in range(9)]  # a slow bass line


def _piano_folder(root):
    for k in range(4):
        write(root, f"piano{k}.mid", midi_bytes([{"notes": [(p + k, a, b) for p, a, b in PIANO_RH], "name": "RH"},
                                                 {"notes": [(p + k, a, b) for p, a, b in PIANO_LH], "name": "LH"}]))
    write(root, "band.mid", midi_bytes(band_tracks()))
    return root


def test_poly_mode_keeps_every_pitched_note_and_records_its_mode(tmp_path):
    src = _piano_folder(tmp_path / "src")
    res = build_corpus([str(src)], tmp_path / "out", ExtractConfig(mode="poly", min_pitch=21, max_pitch=108),
                       val_fraction=0.2, jobs=1, progress=False)
    r = res.report
    nk = r["notes_kept"]
    bass, lead = band_tracks()[1]["notes"], band_tracks()[2]["notes"]
    assert r["mode"] == nk["mode"] == "poly" and r["pieces"]["kept"] == 5
    assert nk["pitched"] == nk["kept"] == 4 * (len(PIANO_RH) + len(PIANO_LH)) + len(bass) + len(lead)
    assert nk["drums"] == len(band_tracks()[0]["notes"])  # dropped without --drums, and not counted as pitched
    c = load_corpus(tmp_path / "out")
    assert isinstance(c.codec, PolyCodec) and c.config.mode == "poly" and c.meta["mode"] == "poly"
    pieces = dict(zip([m["name"] for m in c.train_meta + c.val_meta], c.train + c.val))
    notes, steps = c.codec.decode_notes(pieces[f"{src.name}/piano2.mid"])
    want = canonical([(p + 2, int(a * 4), int(b * 4)) for p, a, b in PIANO_RH + PIANO_LH])
    assert notes == want and steps == 72  # chords and the bass line, exactly, on the grid
    assert json.loads((tmp_path / "out" / "vocab.json").read_text())["kind"] == "poly"


def test_drums_are_kept_only_when_asked(tmp_path):
    src = tmp_path / "src"
    write(src, "band.mid", midi_bytes(band_tracks()))
    write(src, "band2.mid", midi_bytes(band_tracks()))
    nk = build_corpus([str(src)], tmp_path / "a", ExtractConfig(mode="poly", drums=True, min_pitch=21,
                                                                 max_pitch=108),
                      val_fraction=0.3, jobs=1, progress=False).report["notes_kept"]
    assert nk["kept"] == nk["pitched"] == 2 * sum(len(t["notes"]) for t in band_tracks())


def test_poly_augmentation_transposes_training_pieces(tmp_path):
    src = _piano_folder(tmp_path / "src")
    build_corpus([str(src)], tmp_path / "out", ExtractConfig(mode="poly", augment=2, min_pitch=21, max_pitch=108),
                 val_fraction=0.2, jobs=1, progress=False)
    c = load_corpus(tmp_path / "out")
    shifted = [(m, p) for m, p in zip(c.train_meta, c.train) if m["shift"] == 2]
    originals = {m["name"]: p for m, p in zip(c.train_meta, c.train) if m["shift"] == 0}
    assert shifted and not any(m["shift"] for m in c.val_meta)
    for m, p in shifted:
        base = c.codec.decode_notes(originals[m["name"]])[0]
        assert c.codec.decode_notes(p)[0] == [(q + 2, s, e) for q, s, e in base]


def test_cli_poly_mode_and_its_option_errors(tmp_path, capsys):
    src = _piano_folder(tmp_path / "src")
    assert cli_main(["music", "corpus", "--source", str(src), "--out", str(tmp_path / "c"), "--mode", "poly",
                     "--jobs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    n = 4 * (len(PIANO_RH) + len(PIANO_LH)) + len(band_tracks()[1]["notes"]) + len(band_tracks()[2]["notes"])
    assert f"notes kept (poly mode): {n} of {n} pitched notes (100.0 %)" in out
    assert load_corpus(tmp_path / "c").codec.min_pitch == 21  # poly mode's default range: the piano's keys
    with pytest.raises(OptionError, match="--drums keeps drum tracks in poly mode only"):
        from app.music.corpus_cli import run
        import argparse

        run(argparse.Namespace(drums=True, mode="melody", melody_track=None))


def test_retrain_jobs_carry_the_mode_and_a_fine_tune_keeps_its_base_mode(tmp_path):
    """Issue 14, web: the Retrain tab's mode reaches the job; a base model's mode wins over the request."""
    from app.errors import OptionError as OE
    from app.web.jobs import TrainingQueue

    ran = []
    q = TrainingQueue(tmp_path / "models", tmp_path / "jobs", runner=lambda job, *a: ran.append(job.mode))
    midi = [write(tmp_path / "in", f"p{k}.mid", midi_bytes([{"notes": PIANO_RH, "name": "RH"}])) for k in range(2)]
    try:
        job = q.submit([str(p) for p in midi], "poly-one", mode="poly")
        assert job.mode == "poly" and q.get(job.id)["mode"] == "poly"
        with pytest.raises(OE, match="mode must be melody or poly"):
            q.submit([str(p) for p in midi], "bad", mode="chords")
        base = tmp_path / "base"
        base.mkdir()
        from pathlib import Path

        folk = Path(__file__).resolve().parents[1] / "models" / "folk"
        for f in folk.iterdir():
            (base / f.name).write_bytes(f.read_bytes())
        assert q.submit([str(p) for p in midi], "tuned", base=base, mode="poly").mode == "melody"
    finally:
        q.close()
