"""Generation from a model folder: options honoured, bad input refused, files never overwritten."""

import json
import os
import shutil

import numpy as np
import pytest

from app.cli import main
from app.core.folder import load_model_folder
from app.errors import DataError, ModelFolderError, OptionError
from app.names.generator import NameGenerator, make_options


@pytest.fixture(scope="module")
def gen(tiny_names_model):
    return NameGenerator.load(tiny_names_model)


def test_prefix_and_length_bounds_are_honoured(gen):
    names = gen.generate(200, prefix="Tyr", min_len=6, max_len=9, seed=1)
    assert len(names) == 200
    assert all(n.startswith("tyr") and 6 <= len(n) <= 9 for n in names)


def test_same_seed_same_names_and_top_k_one_is_greedy(gen):
    assert gen.generate(20, seed=5) == gen.generate(20, seed=5)
    assert gen.generate(20, seed=5) != gen.generate(20, seed=6)
    greedy = gen.generate(5, top_k=1, seed=1)
    assert len(set(greedy)) == 1 and greedy == gen.generate(5, greedy=True, seed=99)


def test_greedy_follows_the_argmax_of_the_model(gen):
    name = gen.generate(1, greedy=True, max_len=12)[0]
    ids = gen.codec.encode(name)
    logits = gen.stepper.run(ids[None, :-1])[0]
    # every emitted character (and the end) was the most likely one, unless forced by max_len
    expected = logits.argmax(-1)
    expected[expected <= 1] = -99  # pad/bos are never emitted
    assert (expected[: len(name)] == ids[1: len(name) + 1]).all()


def test_suffix_contains_unique_and_novel(gen):
    names = gen.generate(15, suffix="us", contains="a", unique=True, novel_only=True, seed=3)
    assert len(names) == len(set(names)) == 15
    assert all(n.endswith("us") and "a" in n and n not in gen.train_names for n in names)


def test_impossible_constraints_fail_clearly(gen):
    with pytest.raises(OptionError, match="found only"):
        gen.generate(3, suffix="qqqqqq", max_rounds=3, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0}, r"temperature must be in \(0"),
    ({"temperature": -1}, r"temperature must be in \(0"),
    ({"top_p": 1.5}, "top-p"),
    ({"top_p": 0}, "top-p"),
    ({"n": 0}, "n \\(number of names\\)"),
    ({"n": -3}, "n \\(number of names\\)"),
    ({"min_len": 8, "max_len": 4}, "larger than max-len"),
    ({"prefix": "ty7"}, "'7'"),
    ({"colour": "red"}, "unknown option"),
])
def test_bad_options(gen, kwargs, match):
    n = kwargs.pop("n", 3)
    with pytest.raises((OptionError, DataError), match=match):
        gen.generate(n, **kwargs)


def test_report_counts_new_vs_training(gen):
    result = gen.run(make_options(n=300, seed=0))
    r = result.report
    assert r["samples"] == 300 and r["new"] + r["in_train"] == 300
    assert r["in_train"] == sum(n in set(gen.train_names) for n in result.names)


def test_folder_save_load_gives_identical_probabilities(tiny_names_model):
    folder = load_model_folder(tiny_names_model, domain="names")
    ids = np.array([[1, 5, 6, 7, 8, 9, 3]], dtype="int32")
    keras_logits = np.asarray(folder.keras_model()(ids))
    np.testing.assert_allclose(folder.stepper().run(ids), keras_logits, atol=1e-5)


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_model_folder_missing_file(tiny_names_model, tmp_path):
    m = copy_model(tiny_names_model, tmp_path / "m")
    os.remove(m / "vocab.json")
    with pytest.raises(ModelFolderError, match="missing vocab.json"):
        NameGenerator.load(m)


def test_model_folder_from_another_version(tiny_names_model, tmp_path):
    m = copy_model(tiny_names_model, tmp_path / "m")
    cfg = json.loads((m / "config.json").read_text())
    cfg["format"] = 99
    (m / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="format 99"):
        NameGenerator.load(m)


def test_model_folder_that_does_not_exist(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        NameGenerator.load(tmp_path / "nope")


def test_cli_generate_writes_files_and_never_overwrites(tiny_names_model, tmp_path, capsys):
    args = ["names", "generate", "--model", str(tiny_names_model), "-n", "12", "--seed", "4",
            "--out-dir", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 0
    files = sorted(tmp_path.glob("*.txt"))
    assert len(files) == 2
    printed = capsys.readouterr()
    lines = files[0].read_text().splitlines()
    assert len(lines) == 12 and printed.out.splitlines()[:12] == lines
    assert "12 names:" in printed.err and "new" in printed.err


@pytest.mark.parametrize("extra, match", [
    (["--temperature", "0"], r"temperature must be in \(0"),
    (["--top-p", "2"], "top-p"),
    (["-n", "0"], "number of names"),
    (["--prefix", "x#"], "'#'"),
])
def test_cli_bad_options_are_one_line_errors(tiny_names_model, tmp_path, capsys, extra, match):
    code = main(["names", "generate", "--model", str(tiny_names_model), "--out-dir", str(tmp_path)] + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and len(err.splitlines()) == 1
    assert match.strip("\\") in err or __import__("re").search(match, err)
    assert not list(tmp_path.glob("*.txt"))  # nothing half-written


def test_cli_unwritable_output_folder(tiny_names_model, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["names", "generate", "--model", str(tiny_names_model), "--out-dir", str(blocker / "sub")])
    assert code == 2 and "cannot create output folder" in capsys.readouterr().err


def test_cli_evaluate_reports_nll_and_novelty(tiny_names_model, capsys):
    assert main(["names", "evaluate", "--model", str(tiny_names_model), "-n", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    h = report["heldout"]
    assert h["nll_bits_per_char"] == pytest.approx(h["nll_nats_per_char"] / np.log(2))
    assert 0 < h["nll_nats_per_char"] < np.log(29)  # better than uniform after 2 epochs
    assert report["novelty"]["samples"] == 200
