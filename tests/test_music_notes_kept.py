"""Issue 14: the corpus report says what melody mode drops (chosen track, notes in the file, notes kept)."""

from __future__ import annotations

from app.music.corpus import build_corpus, format_summary
from app.music.melody import ExtractConfig
from tests.music_fixtures import TUNE, band_tracks, midi_bytes, write

# A piano part: TUNE on top with a two-note chord under every melody note (the skyline keeps the top line only).
PIANO = [n for p, on, off in TUNE for n in ((p, on, off), (p - 7, on, off), (p - 12, on, off))]


def test_melody_mode_reports_the_track_and_the_notes_it_keeps(tmp_path):
    src = tmp_path / "src"
    write(src, "piano.mid", midi_bytes([{"notes": PIANO, "program": 0, "name": "Piano RH"}]))
    write(src, "band.mid", midi_bytes(band_tracks()))
    write(src, "solo.mid", midi_bytes([{"notes": TUNE, "program": 73, "name": "flute"}]))
    res = build_corpus([str(src)], tmp_path / "out", ExtractConfig(split_silence=0), val_fraction=0.3, jobs=1,
                       progress=False)
    nk = res.report["notes_kept"]
    bass, lead = band_tracks()[1]["notes"], band_tracks()[2]["notes"]
    # pitched notes exclude drums; kept = notes of the kept melody line
    assert nk["mode"] == "melody"
    assert nk["pitched"] == len(PIANO) + len(bass) + len(lead) + len(TUNE)
    assert nk["drums"] == len(band_tracks()[0]["notes"])
    assert nk["kept"] == len(TUNE) * 3
    assert nk["share"] == round(nk["kept"] / nk["pitched"], 4)
    items = {i["source"].split("/")[-1]: i for i in nk["items"]}
    assert set(items) == {"piano.mid", "band.mid"}  # solo.mid lost nothing and has one track: only counted
    assert nk["files_whole"] == 1 and nk["files_listed"] == 2
    assert items["piano.mid"] == {"source": items["piano.mid"]["source"], "pieces": 1, "tracks": 1,
                                  "notes": len(PIANO), "kept": len(TUNE), "share": round(1 / 3, 4),
                                  "track": {"index": 0, "name": "Piano RH", "program": 0}}
    assert items["band.mid"]["track"] == {"index": 2, "name": "lead", "program": 0}
    assert items["band.mid"]["tracks"] == 3 and items["band.mid"]["kept"] == len(TUNE)
    summary = format_summary(res)
    assert f"notes kept (melody mode): {nk['kept']:,} of {nk['pitched']:,} pitched notes" in summary
    assert "lowest file 33 % (src/" in summary  # piano.mid and band.mid both keep a third


def test_a_skipped_piece_counts_its_notes_as_dropped(tmp_path):
    src = tmp_path / "src"
    write(src, "short.mid", midi_bytes([{"notes": TUNE[:3], "name": "x"}]))
    write(src, "solo.mid", midi_bytes([{"notes": TUNE, "name": "y"}]))
    write(src, "solo2.mid", midi_bytes([{"notes": [(p + 2, a, b) for p, a, b in TUNE], "name": "y"}]))
    nk = build_corpus([str(src)], tmp_path / "out", val_fraction=0.3, jobs=1, progress=False).report["notes_kept"]
    items = {i["source"].split("/")[-1]: i for i in nk["items"]}
    assert list(items) == ["short.mid"] and items["short.mid"]["kept"] == 0 and items["short.mid"]["notes"] == 3
    assert (nk["pitched"], nk["kept"]) == (3 + 2 * len(TUNE), 2 * len(TUNE))
