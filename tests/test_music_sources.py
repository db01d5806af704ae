"""Sources and reading: folders, ABC tunes, MusicXML and MIDI from music21's corpus, bad files one by one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.errors import DataError
from app.music.codec import MelodyCodec
from app.music.corpus import extract_file
from app.music.melody import ExtractConfig, extract_melodies
from app.music.midi_io import read_melody, read_midi, write_midi
from app.music.sources import SourceFile, find_files, music21_collection, read_file, split_abc
from tests.music_fixtures import ABC_TWO_TUNES, band_tracks, bad_files, melody_midi, midi_bytes, write

CFG = ExtractConfig()
CODEC = MelodyCodec(CFG.min_pitch, CFG.max_pitch)


def test_split_abc_keeps_header_and_ids():
    tunes = split_abc(ABC_TWO_TUNES)
    assert [t[0] for t in tunes] == ["1", "2"]
    assert tunes[1][1].startswith("%abc\nX:2") and "T:First" not in tunes[1][1]
    assert split_abc("T:no x line\nK:C\nCDE\n")[0][0] == "1" and split_abc("  \n") == []


def test_abc_file_every_tune_is_a_piece(tmp_path):
    path = write(tmp_path, "two.abc", ABC_TWO_TUNES)
    pieces, skips = read_file(SourceFile(str(path), "two.abc"))
    assert skips == [] and [p.name for p in pieces] == ["two.abc#X:1", "two.abc#X:2"]
    assert (pieces[0].time_signature, pieces[0].qpm) == ((3, 4), 100.0)
    assert (pieces[1].time_signature, pieces[1].qpm) == ((6, 8), 120.0)
    m = extract_melodies(pieces[0], CFG).melodies[0]
    assert m.notes()[:4] == [(67, 0, 2), (69, 2, 4), (71, 4, 6), (72, 6, 8)]  # G A B c in eighths, G major


def test_music21_oneills_tunes_extract_and_survive_midi(tmp_path):
    """Integration: real ABC tunes -> melodies -> .mid -> read back -> identical tokens."""
    first = music21_collection("oneills1850")[0]
    pieces, skips = read_file(SourceFile(str(first), "oneills"), tunes=(0, 3))
    assert skips == [] and len(pieces) == 3
    assert pieces[0].time_signature == (2, 4)  # "M: 2/4" of tune 1, not the 1/16 music21 adds mid-tune
    for k, piece in enumerate(pieces):
        res = extract_melodies(piece, CFG)
        assert res.skip is None and res.melodies
        m = res.melodies[0]
        assert len(m.notes()) >= 30 and all(55 <= p <= 96 for p, _, _ in m.notes())
        ids = CODEC.encode(m)
        back = read_melody(write_midi(m, tmp_path / f"{k}.mid"))
        assert CODEC.encode(back).tolist() == ids.tolist()


def test_music21_musicxml_chorale_melody_is_soprano():
    from music21 import corpus

    path = str(corpus.getWork("bach/bwv66.6"))
    pieces, skips = read_file(SourceFile(path, "bwv66.6"))
    assert skips == [] and len(pieces) == 1
    names = [t.name for t in pieces[0].tracks]
    assert names == ["Soprano", "Alto", "Tenor", "Bass"]
    res = extract_melodies(pieces[0], ExtractConfig(split_silence=0))
    assert res.track == 0 and res.melodies
    bass = extract_melodies(pieces[0], ExtractConfig(split_silence=0, melody_track="bass"))
    assert bass.track == 3
    top = max(p for p, _, _ in res.melodies[0].notes())
    assert top > max(p for p, _, _ in bass.melodies[0].notes())


def test_multitrack_midi_drums_bass_melody_extracts_melody(tmp_path):
    path = write(tmp_path, "band.mid", midi_bytes(band_tracks(), qpm=132, time_signature=(3, 4)))
    piece = read_midi(path)
    assert [t.is_drum for t in piece.tracks] == [True, False, False]
    assert piece.qpm == pytest.approx(132) and piece.time_signature == (3, 4)
    res = extract_melodies(piece, ExtractConfig(split_silence=0))
    assert res.track == 2
    assert [p for p, _, _ in res.melodies[0].notes()][:4] == [67, 69, 71, 72]
    assert extract_melodies(piece, ExtractConfig(split_silence=0, melody_track=1)).track == 1
    missing = extract_melodies(piece, ExtractConfig(melody_track="violin"))
    assert missing.skip == "track not found" and "1:bass" in missing.detail


@pytest.mark.parametrize("name", sorted(bad_files()))
def test_bad_input_is_skipped_with_its_reason(tmp_path, name):
    data, reason = bad_files()[name]
    path = write(tmp_path, name, data)
    res = extract_file(str(path), name, dict(CFG.__dict__))
    assert res["pieces"] == []
    assert [s["reason"] for s in res["skipped"]] == [reason], res["skipped"]
    assert res["skipped"][0]["source"].startswith(name)
    assert res["skipped"][0]["detail"]  # a reason a user can act on, not just a code


def test_abc_syntax_error_skips_only_that_tune(tmp_path):
    from tests.music_fixtures import ABC_SYNTAX_ERROR

    path = write(tmp_path, "mixed.abc", ABC_TWO_TUNES + "\n" + ABC_SYNTAX_ERROR.replace("X:1", "X:3"))
    res = extract_file(str(path), "mixed.abc", dict(CFG.__dict__))
    assert [p["name"] for p in res["pieces"]] == ["mixed.abc#X:1", "mixed.abc#X:2"]
    assert [(s["source"], s["reason"]) for s in res["skipped"]] == [("mixed.abc#X:3", "unreadable")]
    assert "ABC parse error" in res["skipped"][0]["detail"] and res["pieces_read"] == 3


def test_find_files_recursive_unsupported_hidden_and_missing(tmp_path):
    write(tmp_path, "a.mid", melody_midi())
    write(tmp_path, "sub/deeper/b.MIDI", melody_midi())
    write(tmp_path, "sub/c.abc", ABC_TWO_TUNES)
    write(tmp_path, "notes.txt", "hello")
    write(tmp_path, ".hidden.mid", melody_midi())
    files, skips = find_files([str(tmp_path)])
    base = tmp_path.name
    assert [f.label for f in files] == [f"{base}/a.mid", f"{base}/sub/c.abc", f"{base}/sub/deeper/b.MIDI"]
    assert [(s.source, s.reason) for s in skips] == [(f"{base}/notes.txt", "unsupported file type")]
    single, _ = find_files([str(tmp_path / "a.mid")])
    assert [f.label for f in single] == [str(tmp_path / "a.mid")]
    with pytest.raises(DataError, match="does not exist"):
        find_files([str(tmp_path / "nope")])
    with pytest.raises(DataError, match="not a music21 corpus collection.*oneills1850"):
        find_files(["music21:no_such_collection"])


def test_unreadable_folder_is_a_skip(tmp_path, monkeypatch):
    write(tmp_path, "ok/a.mid", melody_midi())
    write(tmp_path, "locked/b.mid", melody_midi())
    real = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # tests may run as root, where chmod 000 does not lock
    files, skips = find_files([str(tmp_path)])
    assert [f.label for f in files] == [f"{tmp_path.name}/ok/a.mid"]
    assert [(s.source, s.reason, s.detail) for s in skips] == [("locked", "unreadable folder", "Permission denied")]


def test_default_collections_exist():
    from app.music.sources import DEFAULT_SOURCES

    files, skips = find_files(list(DEFAULT_SOURCES))
    assert skips == [] and len(files) > 1000 and all(f.path.endswith(".abc") for f in files)
    assert "essenFolksong" not in " ".join(DEFAULT_SOURCES)  # non-commercial licence
