"""Training from the CLI: a clear error for bad data, a complete model folder for good data."""

import json

import pytest

from app.cli import main
from app.core.folder import REQUIRED


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "looks binary"),
    (b"abc\n\xc3\x28\n", "line 2 is not UTF-8"),
])
def test_train_bad_data_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, content, match):
    data = tmp_path / "names.txt"
    if content is not None:
        data.write_bytes(content)
    out = tmp_path / "model"
    code = main(["names", "train", "--data", str(data), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error:") and match in err[-1]
    assert not out.exists()


@pytest.mark.slow
def test_train_writes_a_self_describing_folder(tmp_path, capsys):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
                               "kappa", "lambda", "mu"]), encoding="utf-8")
    out = tmp_path / "greek"
    code = main(["names", "train", "--data", str(data), "--out", str(out), "--epochs", "2", "--units", "8",
                 "--quiet", "--logdir", str(tmp_path / "logs")])
    assert code == 0
    assert all((out / f).is_file() for f in REQUIRED)
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["names"] == 12 and card["data"]["val_names"] == 1
    assert len(card["data"]["sha256"]) == 64 and card["model"]["units"] == 8
    # the card schema shared with music: library versions, the command line, the preset picked by data size
    assert card["schema"] == 2 and card["domain"] == "names" and card["train"]["preset"] == "small"
    assert set(card["versions"]) == {"python", "numpy", "tensorflow", "keras"} and all(card["versions"].values())
    assert isinstance(card["command"], str) and card["epochs_done"] == 2 and card["best_epoch"] in (1, 2)
    assert (tmp_path / "logs").is_dir()  # TensorBoard logs
    assert main(["names", "generate", "--model", str(out), "-n", "3", "--no-save"]) == 0
