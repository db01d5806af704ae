"""`python -m app reference ...`: each demo runs, prints its progress, and `count` writes a new plot every time."""

from app.cli import main


def test_count_writes_a_new_plot_each_run(tmp_path, capsys):
    out = tmp_path / "ref"
    assert main(["reference", "count", "--iterations", "60", "--out-dir", str(out)]) == 0
    assert main(["reference", "count", "--iterations", "60", "--out-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "no gradient errors found" in text and "Target output: 5" in text
    pngs = sorted(out.glob("count-ones-rprop-*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 10_000 for p in pngs)


def test_minchar_addition_and_dinos_demos_run(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("hello world, hello rnn.\n" * 20, encoding="utf-8")
    assert main(["reference", "minchar", str(text), "--iterations", "30", "--hidden", "8", "--every", "10"]) == 0
    assert main(["reference", "addition", "--iterations", "20", "--every", "10", "--heldout", "5"]) == 0
    assert main(["reference", "dinos", "--iterations", "5", "--every", "2", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "iter 20, loss:" in out and "held-out:" in out and "nats/char" in out
    assert "Iteration 10  Error:" in out and "never-seen pairs" in out
    assert "Iteration: 0, Loss: 23.09" in out and "Iteration: 4, Loss: " in out and "over 152 names" in out


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["reference", "minchar", str(tmp_path / "missing.txt")]) == 2
    assert main(["reference", "dinos", "--iterations", "-1"]) == 2
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 " * 10)
    assert main(["reference", "minchar", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "--iterations" in err and "not UTF-8" in err
