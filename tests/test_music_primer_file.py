"""--primer-file (issue 16): .mid, .abc (first tune or X: number), .musicxml and .krn primers through the corpus's
readers, bounded; malformed files give a clear error naming the file; a real folk tune is continued, the output's
first bars being the tune (acceptance 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import DataError, OptionError
from app.music.generate import MelodyGenerator, generate_files
from app.music.melody import Melody
from app.music.primer_file import read_primer
from tests.test_music_generate import tiny_model  # noqa: F401  (fixture: random-weight model, range 55..79, 3/4)

ROOT = Path(__file__).resolve().parents[1]
JIG = """X:1
T:A jig with a pickup
M:6/8
L:1/8
K:G
D|GAB c2e|dBG A2D|GAB c2e|dBA G2:|

X:7
T:A reel
M:4/4
L:1/8
K:D
|:DFAF dFAF|GBdB AFED:|
|:A2A2 B2B2|c8:|
"""


def test_abc_primer_first_tune_and_by_number_with_its_metre_and_pickup(tmp_path):
    (tmp_path / "t.abc").write_text(JIG)
    m = read_primer(tmp_path / "t.abc", 4)
    # 6/8 with an eighth-note pickup: 10 steps of silence put the pickup at the end of a 12-step bar
    assert m.time_signature == (6, 8) and m.notes()[0] == (62, 10, 12) and m.notes()[1] == (67, 12, 14)
    assert len(m.notes()) == 2 * (1 + 19)  # the repeat (back to the start, pickup included) is played out
    reel = read_primer(tmp_path / "t.abc", 4, tune="7")
    assert reel.time_signature == (4, 4) and reel.notes()[0] == (62, 0, 2) and len(reel.notes()) == 2 * 16 + 2 * 5
    with pytest.raises(DataError, match=r"t.abc.*no tune X:3; its tunes are X: 1, 7"):
        read_primer(tmp_path / "t.abc", 4, tune=3)


def test_musicxml_and_midi_primers(tmp_path):
    from app.music.codec import MelodyCodec
    from app.music.generate import GeneratedMelody, write_musicxml
    from app.music.midi_io import write_midi

    notes = [(62, 0, 6), (66, 6, 12), (69, 12, 24), (67, 24, 30)]
    codec = MelodyCodec(48, 96)
    gm = GeneratedMelody(codec.encode(Melody.from_notes(notes)), 4, (3, 4), 100.0, 0, 0, codec, key="D")
    write_musicxml(gm, tmp_path / "p.musicxml")
    got = read_primer(tmp_path / "p.musicxml", 4)
    assert got.notes() == notes and got.time_signature == (3, 4)
    write_midi(Melody.from_notes(notes, time_signature=(3, 4)), tmp_path / "p.mid")
    assert read_primer(tmp_path / "p.mid", 4).notes() == notes


@pytest.mark.parametrize("name,text,match", [
    ("bad.abc", "X:1\nM:4/4\nK:G\n", "bad.abc.*cannot be used"),
    ("empty.abc", "   \n", "empty.abc.*(no ABC tune|empty)"),
    ("bad.musicxml", "<score-partwise><part id='P1'><measure><note>", "bad.musicxml.*cannot be used"),
    ("huge.abc", "X:1\nK:C\n" + "C" * (3 << 20), "huge.abc.*too large"),
    ("tune.txt", "X:1\nK:C\nCDE|", "tune.txt.*extension .txt"),
])
def test_malformed_primer_files_name_the_file_and_the_problem(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=match):
        read_primer(tmp_path / name, 4)


def test_missing_file_and_tune_without_abc(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_primer(tmp_path / "nope.abc", 4)
    (tmp_path / "p.mid").write_bytes(b"")
    with pytest.raises(DataError, match="only applies to an ABC file"):
        read_primer(tmp_path / "p.mid", 4, tune=2)


def test_primer_file_through_generate_takes_the_tunes_metre(tiny_model, tmp_path):  # noqa: F811
    (tmp_path / "t.abc").write_text(JIG.replace("D|GAB", "G|GAB"))
    (r,) = generate_files(tiny_model, tmp_path / "o", primer_file=tmp_path / "t.abc", bars=2, seed=1, wav=False,
                          png=False, scores=("abc",))
    assert "M:6/8" in Path(r["abc"]).read_text() and r["primer_steps"] > 0
    with pytest.raises(OptionError, match="one primer"):
        MelodyGenerator.load(tiny_model).generate(primer="60", primer_file=tmp_path / "t.abc")
    with pytest.raises(OptionError, match="--primer-tune"):
        MelodyGenerator.load(tiny_model).generate(primer_tune="3")


def test_a_real_folk_tune_is_continued_and_the_first_bars_are_the_tune(tmp_path):
    """Acceptance 4: O'Neill's 1850 (music21's bundled corpus), tune X:5, a 6/8 tune with a pickup, continued by
    the shipped model; the output's first bars, read back from our .abc, are the tune's."""
    from music21 import corpus

    from app.music.generate import write_abc
    from app.music.metre import steps_per_bar

    path = next(p for p in corpus.getPaths(fileExtensions=("abc",)) if "oneills1850" in str(p))
    tune = read_primer(path, 4, tune="5")
    gen = MelodyGenerator.load(ROOT / "models" / "folk")
    (m,) = gen.generate(primer_file=path, primer_tune="5", bars=8, seed=3)
    assert m.time_signature == tune.time_signature == (6, 8)
    np.testing.assert_array_equal(m.ids[:m.primer_steps], gen.codec.encode(tune))
    bar = steps_per_bar(4, m.time_signature)
    assert len(m.ids) - m.primer_steps >= 8 * bar - bar  # at least 7 more bars of new music
    back = read_primer(write_abc(m, tmp_path / "out.abc"), 4)
    whole = tune.notes()[-1][1] // bar * bar  # the bars before the tune's last note (which the model may extend)
    assert whole >= 4 * bar
    assert [n for n in back.notes() if n[2] <= whole] == [n for n in tune.notes() if n[2] <= whole]


def test_cli_formats_primer_file_and_clear_errors(tiny_model, tmp_path, capsys, monkeypatch):  # noqa: F811
    from app.cli import main
    from app.music import engrave

    # without verovio the default formats leave the .svg out (with a note); asking for svg is a clear error
    monkeypatch.setattr(engrave, "available", lambda: False)
    assert main(["music", "generate", "--model", str(tiny_model), "--out-dir", str(tmp_path / "d"), "--bars", "1",
                 "--synth", "builtin"]) == 0
    assert sorted(p.suffix for p in (tmp_path / "d").iterdir()) == [".abc", ".mid", ".png", ".wav"]
    assert "verovio" in capsys.readouterr().err
    assert main(["music", "generate", "--model", str(tiny_model), "--out-dir", str(tmp_path / "d"),
                 "--formats", "mid,svg"]) == 2
    assert "needs the verovio package" in capsys.readouterr().err
    monkeypatch.undo()

    (tmp_path / "t.abc").write_text(JIG)
    out = tmp_path / "o"
    assert main(["music", "generate", "--model", str(tiny_model), "--out-dir", str(out), "--bars", "2", "--seed",
                 "1", "--formats", "mid,abc,musicxml", "--primer-file", str(tmp_path / "t.abc"), "--primer-tune",
                 "7"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".abc", ".mid", ".musicxml"]
    assert "M:4/4" in next(out.glob("*.abc")).read_text()  # X:7 is the reel, in 4/4
    # --primer-midi is the old name of --primer-file
    from app.music.midi_io import write_midi

    write_midi(Melody.from_notes([(60, 0, 4), (64, 4, 8)]), tmp_path / "p.mid")
    assert main(["music", "generate", "--model", str(tiny_model), "--out-dir", str(out), "--steps", "4",
                 "--formats", "mid", "--primer-midi", str(tmp_path / "p.mid")]) == 0
    capsys.readouterr()
    for argv, match in ((["--formats", "mid,pdf"], "unknown format"),
                        (["--primer-file", str(tmp_path / "t.abc"), "--primer-tune", "2"], "no tune X:2"),
                        (["--primer-tune", "2"], "--primer-tune")):
        assert main(["music", "generate", "--model", str(tiny_model), "--out-dir", str(out), *argv]) == 2
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err
