"""The web page's scores (issue 16): each melody comes with .abc and .musicxml (and the engraved .svg when verovio
is installed); a primer may be pasted as ABC or uploaded as .abc/.musicxml/.mid, read in the bounded child;
malformed primers give a clear message naming what was given. (slow) The page in Chromium: the score under the
player with one measure per bar, the .abc download, a pasted ABC primer, a malformed one."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest

from app.errors import AppError, DataError, OptionError
from app.web.app import generate_music, score_html
from tests.test_web_browser import (CHROMIUM, finish, open_tab, page, server,  # noqa: F401  (fixtures)
                                    set_slider, browser)

JIG = "X:1\nT:Jig\nM:6/8\nL:1/8\nK:G\nD|GAB c2e|dBG A2D|GAB c2e|dBA G2:|\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tests.test_web_browser import tiny_music_model

    root = tmp_path_factory.mktemp("models")
    tiny_music_model(root / "tinyfolk")
    return root.resolve()


def run(models, tmp_path, **kw):
    return generate_music(models, "tinyfolk", out_root=tmp_path / "files", synth="builtin",
                          work_dir=tmp_path / "work", seed=1, **kw)


def test_melodies_come_with_abc_and_musicxml_and_a_pasted_abc_primer_is_continued(models, tmp_path):
    (r,) = run(models, tmp_path, bars=2, primer_abc=JIG.replace("X:1\n", ""))  # no X: line: one is added
    abc = Path(r["abc"]).read_text()
    assert "M:6/8" in abc and r["primer_steps"] > 0 and Path(r["musicxml"]).read_text().count("<measure ") >= 9
    assert list((tmp_path / "work").iterdir()) == []  # the pasted text and the clean primer are removed
    html = score_html(r.get("svg"))
    assert ("<svg" in html) == ("svg" in r)


def test_uploaded_abc_and_musicxml_primers(models, tmp_path):
    up = tmp_path / "up"
    up.mkdir()
    (up / "jig.abc").write_text(JIG)
    (r,) = run(models, tmp_path, bars=1, primer=str(up / "jig.abc"))
    assert r["primer_steps"] > 0
    (up / "tune.musicxml").write_text(Path(r["musicxml"]).read_text())
    (r2,) = run(models, tmp_path, bars=1, primer=str(up / "tune.musicxml"))
    assert r2["primer_steps"] >= r["steps"] - 12  # the whole first output (its trailing silence aside) is the primer


@pytest.mark.parametrize("kw,match", [
    ({"primer_abc": "X:1\nM:4/4\nK:G\n"}, "no line of notes"),
    ({"primer_abc": "X:1\nK:C\n" + "C" * 30_000}, "at most 20,000"),
    ({"primer_abc": "X:1\nM:4/4\nK:G\n]]]]"}, "the pasted ABC.*cannot be used"),
])
def test_malformed_pasted_abc_gets_a_clear_message(models, tmp_path, kw, match):
    with pytest.raises(AppError, match=match):
        run(models, tmp_path, **kw)


def test_bad_uploads_and_two_primers(models, tmp_path):
    (tmp_path / "notes.txt").write_text("CDE")
    with pytest.raises(DataError, match="notes.txt.*not a primer file"):
        run(models, tmp_path, primer=str(tmp_path / "notes.txt"))
    (tmp_path / "bad.musicxml").write_text("<score-partwise><part id='P1'><measure><note>")
    with pytest.raises(DataError, match="bad.musicxml"):
        run(models, tmp_path, primer=str(tmp_path / "bad.musicxml"))
    (tmp_path / "jig.abc").write_text(JIG)
    with pytest.raises(OptionError, match="one primer"):
        run(models, tmp_path, primer=str(tmp_path / "jig.abc"), primer_abc=JIG)


# --- the page in Chromium ------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")
def test_page_shows_the_score_offers_the_abc_and_takes_an_abc_primer(page, tmp_path):  # noqa: F811
    from app.music.engrave import available

    open_tab(page, "Music")
    set_slider(page, "music-bars", 4)
    page.click("#music-generate")
    page.locator("#music-sheet-0").get_by_text(".abc").first.wait_for()
    if available():  # the server runs in this interpreter: verovio engraves the score under the player
        page.locator("#music-score-0 svg").first.wait_for()
        assert page.locator("#music-score-0 g.measure").count() == 4
        assert page.locator("#music-score-0 g.clef").count() >= 1
        assert page.locator("#music-score-0 g.meterSig").count() >= 1
    else:
        page.locator("#music-score-0").get_by_text("verovio package is not installed").wait_for()
    link = page.locator("#music-sheet-0 a[href*='.abc']").first  # the download link, fetched as the browser would
    resp = page.request.get(urljoin(page.url, link.get_attribute("href")))
    assert resp.ok
    text = resp.text()
    assert re.search(r"^M:4/4$", text, re.M) and re.search(r"^K:", text, re.M)
    page.fill("#music-primer-abc textarea", JIG)
    page.click("#music-generate")
    page.locator("#music-out-0").get_by_text("from the primer").wait_for()
    finish(page, tmp_path, "music-score")
    page.fill("#music-primer-abc textarea", "X:1\nM:4/4\nK:G\n")
    page.click("#music-generate")
    page.locator("#music-status").get_by_text("no line of notes").wait_for()


def test_metre_choice_reaches_the_files_and_bad_metres_are_clear_errors(models, tmp_path):
    import pretty_midi

    (r,) = run(models, tmp_path, bars=2, metre="3/4")
    assert "M:3/4" in Path(r["abc"]).read_text() and r["steps"] == 24
    sig = pretty_midi.PrettyMIDI(r["mid"]).time_signature_changes[0]
    assert (sig.numerator, sig.denominator) == (3, 4)
    (r,) = run(models, tmp_path, bars=2, metre="model's own")
    assert r["steps"] == 32  # the tiny model's own metre is 4/4
    with pytest.raises(OptionError, match="time signature"):
        run(models, tmp_path, bars=2, metre="7/5")
