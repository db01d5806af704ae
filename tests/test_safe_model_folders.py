"""Model folders are never lost (issue 12, items 1, 3 and 6): `--out` refuses what is not ours, replaces a model
only with --force, checks before training, and a crash at any step of a save leaves the old or the new model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.core.folder import check_model_destination, load_model_folder, save_model_folder
from app.errors import OptionError, OutputError
from tests.faults import crash_points

ROOT = Path(__file__).resolve().parents[1]


class _StubKeras:
    def __init__(self, tag: str):
        self.tag = tag

    def save(self, path):
        Path(path).write_bytes(self.tag.encode() * 100)


def _save(path: Path, tag: str, units: int = 4) -> None:
    from app.names.codec import NameCodec

    vocab = NameCodec.build(["ab", "ba"]).vocab
    v, u = vocab.size, units
    weights = {"rnn_0/kernel": np.zeros((v, 4 * u), np.float32), "rnn_0/recurrent_kernel": np.zeros((u, 4 * u), np.float32),
               "rnn_0/bias": np.zeros(4 * u, np.float32), "head/kernel": np.zeros((u, v), np.float32),
               "head/bias": np.zeros(v, np.float32)}  # a valid (untrained) LSTM: load_model_folder checks shapes
    save_model_folder(path, keras_model=_StubKeras(tag), weights=weights,
                      vocab=vocab, config={"domain": "names", "model": {"cell": "lstm", "units": units}},
                      card={"name": path.name, "tag": tag}, extra_files={"names_train.txt": f"{tag}\n"})


def _tag(path: Path) -> str:
    folder = load_model_folder(path)  # every required file present and readable
    tag = folder.card["tag"]
    assert (path / "model.keras").read_bytes() == tag.encode() * 100
    assert (path / "names_train.txt").read_text() == f"{tag}\n"
    return tag


def _leftovers(parent: Path) -> list[str]:
    return sorted(n for n in os.listdir(parent) if n.startswith("."))


def _unrelated(tmp_path: Path) -> Path:
    v = tmp_path / "V"
    (v / "sub").mkdir(parents=True)
    (v / "thesis.txt").write_text("my thesis")
    (v / "sub" / "notes.md").write_text("notes")
    return v


def test_destination_rules(tmp_path):
    v = _unrelated(tmp_path)
    for force in (False, True):
        with pytest.raises(OptionError, match="not a model folder"):
            check_model_destination(v, force=force)
    with pytest.raises(OptionError, match="empty"):
        check_model_destination("")
    with pytest.raises(OptionError, match="empty"):
        check_model_destination("  ")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OptionError, match="is a file"):
        check_model_destination(tmp_path / "file", force=True)
    (tmp_path / "empty").mkdir()
    assert check_model_destination(tmp_path / "empty") == tmp_path / "empty"
    assert check_model_destination(tmp_path / "new") == tmp_path / "new"
    _save(tmp_path / "m", "old", units=256)
    with pytest.raises(OptionError, match=r"256 units.*--force"):
        check_model_destination(tmp_path / "m")
    assert check_model_destination(tmp_path / "m", force=True) == tmp_path / "m"
    # the library refuses too
    with pytest.raises(OutputError, match="not a model folder"):
        _save(v, "new")
    assert (v / "thesis.txt").read_text() == "my thesis" and (v / "sub" / "notes.md").read_text() == "notes"


def _no_training(monkeypatch):
    import app.core.train as train

    def fit(*a, **k):
        raise AssertionError("training started before the destination was checked")

    monkeypatch.setattr(train, "fit", fit)


def test_names_train_refuses_unrelated_folder_and_empty_out_before_training(tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    v = _unrelated(tmp_path)
    data = ROOT / "data" / "dinos.txt"
    assert main(["names", "train", "--data", str(data), "--out", str(v), "--quiet"]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert main(["names", "train", "--data", str(data), "--out", str(v), "--quiet", "--force"]) == 2
    assert sorted(p.name for p in v.rglob("*")) == ["notes.md", "sub", "thesis.txt"]
    assert main(["names", "train", "--data", str(data), "--out", "", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--out is empty" in err and "Traceback" not in err


def test_names_train_over_a_model_needs_force(tmp_path, capsys, monkeypatch):
    _save(tmp_path / "m", "old", units=256)
    _no_training(monkeypatch)
    data = ROOT / "data" / "dinos.txt"
    assert main(["names", "train", "--data", str(data), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert _tag(tmp_path / "m") == "old"


def test_music_train_over_a_model_with_other_settings_needs_force(tmp_path, capsys, monkeypatch):
    from app.music.codec import MelodyCodec
    from app.music.train import MusicData, train_music

    _save(tmp_path / "m", "old", units=256)
    _no_training(monkeypatch)
    codec = MelodyCodec(60, 62)
    piece = np.array([2, 0, 3, 0], np.int32)
    data = MusicData([piece], [piece], codec.vocab, {"steps_per_quarter": 4}, {"path": "x"})
    with pytest.raises(OptionError, match="--force"):
        train_music(data, tmp_path / "m", progress=False)
    with pytest.raises(OptionError, match="not a model folder"):
        train_music(data, _unrelated(tmp_path), progress=False, force=True)
    with pytest.raises(AssertionError, match="training started"):  # with --force it gets as far as training
        train_music(data, tmp_path / "m", progress=False, force=True)
    assert _tag(tmp_path / "m") == "old"
    # the CLI checks before it even reads the corpus
    assert main(["music", "train", "--corpus", str(tmp_path / "nocorpus"), "--out", str(tmp_path / "m")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["music", "train", "--corpus", str(tmp_path / "nocorpus"), "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err


def test_force_replaces_a_model_folder(tmp_path):
    _save(tmp_path / "m", "old")
    _save(tmp_path / "m", "new")
    assert _tag(tmp_path / "m") == "new"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", [True, False])
def test_a_crash_at_any_step_of_a_save_leaves_the_old_or_the_new_model(tmp_path, existing):
    dest = tmp_path / "m"
    if existing:
        _save(dest, "old")
    seen = set()
    for k in crash_points(lambda: _save(dest, "new")):
        if existing or dest.exists():
            seen.add(_tag(dest))  # a complete model, old or new, at the name a user reads
        check_model_destination(dest, force=True)  # the next run cleans what the crash left
        assert _leftovers(tmp_path) == []
        if dest.exists() and _tag(dest) == "new":
            _save(dest, "old") if existing else __import__("shutil").rmtree(dest)
    assert _tag(dest) == "new" and _leftovers(tmp_path) == []
    assert seen == ({"old", "new"} if existing else set())  # crash points on both sides of the switch


def test_crash_between_the_renames_of_the_fallback_is_rolled_back(tmp_path, monkeypatch):
    """Where renameat2 is missing (not Linux), a crash after `dest -> .dest.old-*` puts the old model back."""
    import app.core.outputs as outputs

    dest = tmp_path / "m"
    _save(dest, "old")
    monkeypatch.setattr(outputs, "_renameat2", lambda *a: False)
    for k in crash_points(lambda: _save(dest, "new")):
        folder = load_model_folder(dest)  # the load recovers a missing folder
        assert folder.card["tag"] in ("old", "new")
        check_model_destination(dest, force=True)
        assert _leftovers(tmp_path) == []
        if folder.card["tag"] == "new":
            _save(dest, "old")
    assert _tag(dest) == "new"
