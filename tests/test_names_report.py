import json

import numpy as np
import pytest

from app.cli import main
from app.names.report import bigram_counts, js_divergence, length_hist


def test_js_divergence_known_values():
    assert js_divergence(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(0.0)
    assert js_divergence(np.array([1.0, 0]), np.array([0.0, 1])) == pytest.approx(1.0)
    a, b = np.array([3.0, 1]), np.array([1.0, 3])
    assert 0 < js_divergence(a, b) < 1
    assert js_divergence(a, b) == pytest.approx(js_divergence(b, a))


def test_bigram_counts_mark_start_and_end():
    counts = bigram_counts(["ab", "b"], "ab").reshape(4, 4)  # symbols ^ a b $
    assert counts[0, 1] == 1 and counts[1, 2] == 1 and counts[2, 3] == 2 and counts[0, 2] == 1
    assert counts.sum() == 5  # 3 bigrams in ^ab$, 2 in ^b$


def test_length_hist_clips_long_names():
    np.testing.assert_array_equal(length_hist(["a", "abc", "abcdefgh"], 4), [0, 1, 0, 1, 1])


def test_report_command_writes_json_markdown_and_plots(tiny_names_model, tmp_path, capsys):
    code = main(["names", "report", "--model", str(tiny_names_model), "-n", "100", "--temperatures", "0.8,1.2",
                 "--out-dir", str(tmp_path)])
    assert code == 0
    (folder,) = tmp_path.iterdir()
    report = json.loads((folder / "report.json").read_text())
    assert [r["temperature"] for r in report["by_temperature"]] == [0.8, 1.2]
    for r in report["by_temperature"]:
        assert r["samples"] == 100 and r["new"] + r["in_train"] == 100 and r["unique"] <= 100
        assert 0 <= r["bigram_js_bits"] <= 1
    assert (folder / "report.md").read_text().startswith("# Names report")
    assert len(list(folder.glob("*.png"))) >= 2


def test_report_rejects_bad_temperatures(tiny_names_model, tmp_path, capsys):
    assert main(["names", "report", "--model", str(tiny_names_model), "--temperatures", "hot",
                 "--out-dir", str(tmp_path)]) == 2
    assert main(["names", "report", "--model", str(tiny_names_model), "--temperatures", "0",
                 "--out-dir", str(tmp_path)]) == 2
    assert "--temperatures must be finite numbers > 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written
