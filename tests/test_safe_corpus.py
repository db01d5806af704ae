"""Corpus builds never mix versions or overwrite what is not theirs (issue 12, items 3, 4 and 5): a crash at any
step leaves report.json, vocab.json and corpus.npz of one build together; `music corpus` without --out never
writes into the git-tracked default corpus for other sources."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app.cli import main as cli_main
from app.errors import OptionError
from app.music.corpus import build_corpus, check_corpus_destination, load_corpus
from tests.faults import crash_points
from tests.music_fixtures import TUNE, melody_midi, write

ROOT = Path(__file__).resolve().parents[1]


def _source(root: Path) -> Path:
    for k in range(5):
        notes = [(p + 2 * k, on + k, off + k) for p, on, off in TUNE]
        write(root, f"song{k}.mid", melody_midi(notes[k:] + notes[:k]))
    return root


def _version(out: Path) -> float | None:
    """The build a reader sees at `out` (its val_fraction), checking the three files belong to that one build."""
    if not (out / "corpus.npz").exists():
        assert not (out / "report.json").exists()
        return None
    report = json.loads((out / "report.json").read_text())
    with np.load(out / "corpus.npz") as z:
        inner = json.loads(str(z["report_json"]))
    assert report == inner  # report.json describes the split inside corpus.npz
    assert json.loads((out / "vocab.json").read_text()) == load_corpus(out).vocab.to_json()
    return report["split"]["val_fraction"]


def _leftovers(parent: Path) -> list[str]:
    return sorted(n for n in os.listdir(parent) if n.startswith("."))


def test_a_crash_at_any_step_of_a_build_leaves_one_whole_version(tmp_path):
    src, out = _source(tmp_path / "src"), tmp_path / "out"
    build_corpus([str(src)], out, val_fraction=0.2, jobs=1, progress=False)
    seen = set()
    for k in crash_points(lambda: build_corpus([str(src)], out, val_fraction=0.4, jobs=1, progress=False)):
        seen.add(_version(out))
        check_corpus_destination(out)  # the next build cleans what the crash left
        assert _leftovers(tmp_path) == []
        if _version(out) == 0.4:
            build_corpus([str(src)], out, val_fraction=0.2, jobs=1, progress=False)
    assert seen == {0.2, 0.4} and _version(out) == 0.4 and _leftovers(tmp_path) == []


def test_build_refuses_a_folder_with_other_files(tmp_path):
    src, out = _source(tmp_path / "src"), tmp_path / "out"
    write(out, "thesis.txt", "mine")
    with pytest.raises(OptionError, match="not part of a corpus.*thesis.txt"):
        build_corpus([str(src)], out, jobs=1, progress=False)
    assert os.listdir(out) == ["thesis.txt"]
    with pytest.raises(OptionError, match="empty"):
        build_corpus([str(src)], "", jobs=1, progress=False)


def test_corpus_without_out_is_named_after_the_source_never_default(tmp_path, monkeypatch, capsys):
    src = _source(tmp_path / "mytunes")
    work = tmp_path / "work"
    (work / "data" / "corpora" / "default").mkdir(parents=True)
    tracked = work / "data" / "corpora" / "default" / "report.json"
    tracked.write_text('{"tracked": true}\n')
    monkeypatch.chdir(work)
    assert cli_main(["music", "corpus", "--source", str(src), "--jobs", "1", "--quiet"]) == 0
    assert _version(work / "data" / "corpora" / "mytunes") == 0.1
    assert tracked.read_text() == '{"tracked": true}\n' and os.listdir(tracked.parent) == ["report.json"]
    capsys.readouterr()
    assert cli_main(["music", "corpus", "--source", str(src), "--out", "data/corpora/default", "--quiet"]) == 2
    assert "default corpus" in capsys.readouterr().err
    assert tracked.read_text() == '{"tracked": true}\n'
