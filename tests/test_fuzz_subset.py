"""A fast subset of bench/fuzz.py (issue 12): a few hostile kinds through the per-file reader, forked and capped."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST_KINDS = ["truncated", "byte_flip", "huge_note", "tempo_zero", "absurd_timesig", "format_2", "smpte",
              "chunk_len_lie", "random_bytes_mid", "abc_long_note", "abc_latin1", "xml_garbage", "xml_laughs",
              "nonutf8_filename", "symlink_loop", "fifo", "broken_symlink", "names_nonutf8", "names_huge",
              "names_fifo"]


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("bench_fuzz", ROOT / "bench" / "fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_harness_has_at_least_40_kinds(fuzz):
    assert len(fuzz.KINDS) >= 40
    assert set(FAST_KINDS) <= set(fuzz.KINDS)


def test_fast_fuzz_kinds_are_clean_skips_within_caps(fuzz, tmp_path):
    fuzz.warm()
    planned = fuzz.plan(2 * len(FAST_KINDS), seed=7, kinds=FAST_KINDS)
    items, kinds = [], []
    for i, (kind, seed) in enumerate(planned):
        items.append(fuzz.materialise(tmp_path, i, kind, seed))
        kinds.append(kind)
    items = [(t, str(p)) for t, p in items]
    results = fuzz.run_forked(items, fuzz._child_reader, jobs=2, time_cap=30.0, as_cap_gb=4.0, progress=False)
    s = fuzz.summarise("reader", items, kinds, results)
    assert s["tracebacks"] == 0, s["traceback_examples"]
    assert s["timeouts"] == 0, s["timeout_examples"]
    reasons = s["skips_by_reason"]
    assert reasons.get("truncated", 0) >= 2 and reasons.get("too long", 0) >= 4  # huge_note + abc_long_note
    assert reasons.get("not a regular file", 0) >= 2 and reasons.get("symlinked folder", 0) >= 2


def test_internal_errors_are_told_apart_from_reasons(fuzz):
    assert fuzz.internal_error("TypeError: 'NoneType' object is not subscriptable")
    assert not fuzz.internal_error("ABC parse error (ABCHandlerException: bad)")
    assert not fuzz.internal_error("track 0: an event at byte 40 runs past the end of the file (41 bytes)")
