"""Web page without a browser: upload checks (zip-slip, limits, types), model names, the training queue, and the
pure functions the page's handlers call."""

from __future__ import annotations

import io
import json
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from app.errors import DataError, ModelFolderError, OptionError
from app.web.jobs import Job, TrainingQueue
from app.web.uploads import (UploadLimits, check_midi_file, collect_uploads, safe_file_name,
                             sanitize_model_name)
from tests.music_fixtures import melody_midi

MIDI = melody_midi()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] = {}) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- names ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [
    ("Web Tune!", "web-tune"), ("my_tunes-2", "my_tunes-2"), ("../../etc/passwd", "etc-passwd"),
    ("..", None), ("/", None), ("   ", None), ("", None), (None, None), ("ÄÖÜ", None), ("con", None),
    ("a" * 100, "a" * 40), ("  Jigs & Reels  ", "jigs-reels"), (".hidden", "hidden"), ("C:\\models\\x", "c-models-x"),
])
def test_model_names_are_sanitised(given, expected):
    if expected is None:
        with pytest.raises(OptionError):
            sanitize_model_name(given)
    else:
        name = sanitize_model_name(given)
        assert name == expected
        assert "/" not in name and "\\" not in name and not name.startswith(".")


@pytest.mark.parametrize("given, expected", [
    ("../../evil.mid", "evil.mid"), ("..\\..\\evil.mid", "evil.mid"), ("/etc/cron.d/x.mid", "x.mid"),
    (".bashrc.mid", "bashrc.mid"), ("..", "file"), ("", "file"), ("tune (1).mid", "tune_1_.mid"),
])
def test_file_names_keep_only_a_safe_last_component(given, expected):
    assert safe_file_name(given) == expected


# --- files ---------------------------------------------------------------------------------------------------------
def test_midi_files_are_copied_and_names_kept(tmp_path):
    a = write(tmp_path / "in" / "a.mid", MIDI)
    b = write(tmp_path / "in" / "b.midi", MIDI)
    dest = tmp_path / "up"
    res = collect_uploads([a, b, a], dest)
    assert [p.name for p in res.files] == ["a.mid", "b.midi", "a-2.mid"]
    assert all(p.parent == dest and p.read_bytes() == MIDI for p in res.files)


@pytest.mark.parametrize("name, data, match", [
    ("notes.txt", b"hello", "not accepted"),
    ("song.mp3", b"ID3....", "not accepted"),
    ("fake.mid", b"hello, not a midi file", "MThd"),
    ("fake.zip", b"PK but not really", "not a readable zip"),
    ("noext", MIDI, "not accepted"),
])
def test_bad_file_types_are_refused_with_the_file_named(tmp_path, name, data, match):
    bad = write(tmp_path / "in" / name, data)
    good = write(tmp_path / "in" / "good.mid", MIDI)
    with pytest.raises(DataError, match=match) as err:
        collect_uploads([good, bad], tmp_path / "up")
    assert name in str(err.value)


def test_display_names_are_used_in_messages_and_copies(tmp_path):
    stored = write(tmp_path / "gradio" / "abc123", MIDI)
    res = collect_uploads([stored], tmp_path / "up", names=["My Tune.mid"])
    assert [p.name for p in res.files] == ["My_Tune.mid"]
    junk = write(tmp_path / "gradio" / "def456", b"junk")
    with pytest.raises(DataError, match="'oops.txt'"):
        collect_uploads([junk], tmp_path / "up2", names=["oops.txt"])


def test_count_size_and_total_limits(tmp_path):
    files = [write(tmp_path / "in" / f"t{k}.mid", MIDI) for k in range(4)]
    with pytest.raises(DataError, match="4 files uploaded; the limit is 3"):
        collect_uploads(files, tmp_path / "up", UploadLimits(max_files=3))
    big = write(tmp_path / "in" / "big.mid", b"MThd" + bytes(2000))
    with pytest.raises(DataError, match="big.mid.*limit is"):
        collect_uploads([big], tmp_path / "up", UploadLimits(max_file_bytes=1000))
    with pytest.raises(DataError, match="over .* in all"):
        collect_uploads(files, tmp_path / "up", UploadLimits(max_total_bytes=len(MIDI) * 3 + 1))
    assert len(collect_uploads(files, tmp_path / "ok", UploadLimits(max_files=4)).files) == 4
    with pytest.raises(DataError, match="no files uploaded"):
        collect_uploads([], tmp_path / "up")


def test_zip_slip_entries_stay_inside_the_upload_folder(tmp_path):
    z = make_zip(tmp_path / "in" / "evil.zip", {
        "../../evil1.mid": MIDI, "/abs/evil2.mid": MIDI, "a/../../evil3.mid": MIDI,
        "sub\\..\\..\\evil4.mid": MIDI, "ok/nested/tune.mid": MIDI, "..": MIDI,
    })
    box = tmp_path / "box"
    dest = box / "up"
    res = collect_uploads([z], dest)
    assert len(res.files) == 5  # ".." has no .mid suffix: skipped
    assert all(p.resolve().parent == dest.resolve() for p in res.files)
    assert tree(box) == {"up"} | {f"up/{p.name}" for p in res.files}
    assert not any((tmp_path / n).exists() for n in ("evil1.mid", "evil3.mid", "evil4.mid"))
    assert not Path("/abs/evil2.mid").exists()
    assert sorted(p.name for p in res.files) == ["evil1.mid", "evil2.mid", "evil3.mid", "evil4.mid", "tune.mid"]


def test_zip_symlinks_and_non_midi_entries_are_skipped_with_reasons(tmp_path):
    z = make_zip(tmp_path / "in" / "mixed.zip", {"README.txt": b"hi", "tune.mid": MIDI, "junk.mid": b"not midi",
                                                "folder/": b""},
                 symlinks={"link.mid": "/etc/passwd"})
    res = collect_uploads([z], tmp_path / "up")
    assert [p.name for p in res.files] == ["tune.mid"]
    reasons = dict(res.skipped)
    assert "not a .mid/.midi" in reasons["mixed.zip:README.txt"]
    assert "MThd" in reasons["mixed.zip:junk.mid"]
    assert "symbolic link" in reasons["mixed.zip:link.mid"]
    assert not (tmp_path / "up" / "link.mid").exists()


def test_zip_without_midi_is_an_error_that_says_why(tmp_path):
    z = make_zip(tmp_path / "in" / "docs.zip", {"a.txt": b"x", "b.pdf": b"y"})
    with pytest.raises(DataError, match="no MIDI files.*a.txt"):
        collect_uploads([z], tmp_path / "up")


def test_zip_bombs_and_entry_counts_are_limited(tmp_path):
    bomb = MIDI + bytes(3_000_000)  # compresses to a few KB
    z = make_zip(tmp_path / "in" / "bomb.zip", {"bomb.mid": bomb, "tune.mid": MIDI})
    assert z.stat().st_size < 100_000
    res = collect_uploads([z], tmp_path / "up", UploadLimits(max_file_bytes=1_000_000))
    assert [p.name for p in res.files] == ["tune.mid"]
    assert "limit" in dict(res.skipped)["bomb.zip:bomb.mid"]
    many = make_zip(tmp_path / "in" / "many.zip", {f"t{k}.mid": MIDI for k in range(6)})
    with pytest.raises(DataError, match="more than 5 MIDI files"):
        collect_uploads([many], tmp_path / "up2", UploadLimits(max_zip_entries=5))
    with pytest.raises(DataError, match="unpack to more than"):
        collect_uploads([many], tmp_path / "up3", UploadLimits(max_unzipped_bytes=len(MIDI) * 3))


def test_zip_entry_lying_about_its_size_is_not_extracted_beyond_the_limit(tmp_path):
    """A header that claims a small size cannot smuggle a large entry past the limit: we read at most limit+1."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("big.mid", MIDI + bytes(5000))
    data = bytearray(buf.getvalue())
    # patch the uncompressed size in the central directory entry to 10 bytes
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    z = write(tmp_path / "in" / "liar.zip", bytes(data))
    res_dir = tmp_path / "up"
    try:
        res = collect_uploads([z], res_dir, UploadLimits(max_file_bytes=1000))
        extracted = res.files
    except DataError:
        extracted = []
    assert all(p.stat().st_size <= 1000 for p in extracted)


def test_primer_check(tmp_path):
    assert check_midi_file(write(tmp_path / "p.mid", MIDI)) == tmp_path / "p.mid"
    with pytest.raises(DataError, match="not a MIDI file"):
        check_midi_file(write(tmp_path / "p.txt", MIDI))
    with pytest.raises(DataError, match="MThd"):
        check_midi_file(write(tmp_path / "q.mid", b"nope"))
    with pytest.raises(DataError, match="limit"):
        check_midi_file(write(tmp_path / "r.mid", MIDI), limits=UploadLimits(max_file_bytes=10))


# --- the training queue (a fake runner: no TensorFlow) ----------------------------------------------------------------
class FakeRunner:
    """Runs until released; records the order; emits one epoch and a result (or fails for names with 'fail')."""

    def __init__(self):
        self.order: list[str] = []
        self.release = {}
        self.lock = threading.Lock()

    def gate(self, name):
        with self.lock:
            return self.release.setdefault(name, threading.Event())

    def __call__(self, job: Job, job_dir: Path, models_dir: Path, on_event):
        self.order.append(job.name)
        assert self.gate(job.name).wait(10)
        if "fail" in job.name:
            on_event({"event": "error", "message": "the corpus is empty"})
            raise DataError("the corpus is empty")
        on_event({"event": "epoch", "epoch": 1, "epochs": job.epochs, "loss": 2.5, "val_loss": 2.75})
        (models_dir / job.name).mkdir(parents=True)
        on_event({"event": "done", "model": str(models_dir / job.name), "epochs_done": 1, "best_epoch": 1,
                  "validation": {}})


def wait_for(cond, timeout=10.0):
    import time

    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def queue(tmp_path):
    runner = FakeRunner()
    q = TrainingQueue(tmp_path / "models", tmp_path / "work", max_waiting=2, runner=runner)
    q.runner_fake = runner
    (tmp_path / "models").mkdir()
    yield q
    for ev in list(runner.release.values()):
        ev.set()
    q.close()


def test_one_job_at_a_time_and_the_second_waits_its_turn(queue, tmp_path):
    midi = [write(tmp_path / "in" / f"t{k}.mid", MIDI) for k in range(2)]
    runner = queue.runner_fake
    first = queue.submit(midi, "First", epochs=1)
    assert wait_for(lambda: queue.get(first.id)["state"] == "running")
    second = queue.submit(midi, "second", epochs=1)
    snap = queue.get(second.id)
    assert snap["state"] == "queued" and snap["position"] == 1 and snap["running_name"] == "first"
    assert runner.order == ["first"]
    runner.gate("first").set()
    assert wait_for(lambda: queue.get(first.id)["state"] == "done")
    assert wait_for(lambda: queue.get(second.id)["state"] == "running")
    runner.gate("second").set()
    assert wait_for(lambda: queue.get(second.id)["state"] == "done")
    assert runner.order == ["first", "second"]
    done = queue.get(first.id)
    assert done["history"] == [{"epoch": 1, "loss": 2.5, "val_loss": 2.75}]
    assert not first.upload_dir.exists()  # uploads are removed once the job has run


def test_queue_refuses_duplicates_a_full_queue_and_existing_models(queue, tmp_path):
    midi = [write(tmp_path / "in" / "t.mid", MIDI)]
    (queue.models_dir / "taken").mkdir()
    with pytest.raises(OptionError, match="already exists"):
        queue.submit(midi, "Taken")
    a = queue.submit(midi, "a")
    assert wait_for(lambda: queue.get(a.id)["state"] == "running")
    with pytest.raises(OptionError, match="already running"):
        queue.submit(midi, "A")
    queue.submit(midi, "b")
    queue.submit(midi, "c")
    with pytest.raises(DataError, match="queue is full"):
        queue.submit(midi, "d")
    with pytest.raises(OptionError, match="epochs"):
        queue.submit(midi, "e", epochs=0)
    with pytest.raises(ModelFolderError):
        queue.submit(midi, "f", base=tmp_path / "no-such-model")


def test_failed_job_reports_its_message_and_the_queue_goes_on(queue, tmp_path):
    midi = [write(tmp_path / "in" / "t.mid", MIDI)]
    bad = queue.submit(midi, "will-fail")
    good = queue.submit(midi, "after")
    queue.runner_fake.gate("will-fail").set()
    queue.runner_fake.gate("after").set()
    assert wait_for(lambda: queue.get(good.id)["state"] == "done")
    snap = queue.get(bad.id)
    assert snap["state"] == "failed" and snap["message"] == "the corpus is empty"


def test_bad_upload_never_queues_a_job(queue, tmp_path):
    junk = write(tmp_path / "in" / "junk.mid", b"junk")
    with pytest.raises(DataError, match="MThd"):
        queue.submit([junk], "x")
    assert not queue.busy()
    assert not any(queue.work_dir.glob("*/uploads")) if queue.work_dir.exists() else True


# --- page functions ------------------------------------------------------------------------------------------------
def fake_model(root: Path, name: str, domain: str) -> Path:
    p = root / name
    p.mkdir(parents=True)
    (p / "config.json").write_text(json.dumps({"format": 1, "domain": domain}))
    (p / "weights.npz").write_bytes(b"")
    return p


def test_models_are_listed_by_domain_and_only_listed_names_resolve(tmp_path):
    from app.web.app import find_models, resolve_model

    fake_model(tmp_path, "dinos", "names")
    fake_model(tmp_path, "folk", "music")
    fake_model(tmp_path, ".training-123", "music")  # being trained: hidden
    (tmp_path / "empty").mkdir()
    assert find_models(tmp_path, "names") == ["dinos"]
    assert find_models(tmp_path, "music") == ["folk"]
    assert find_models(tmp_path / "missing", "music") == []
    assert resolve_model(tmp_path, "folk", "music") == tmp_path / "folk"
    for bad in ("dinos", "../folk", str(tmp_path / "folk"), ".training-123", "", None):
        with pytest.raises(ModelFolderError):
            resolve_model(tmp_path, bad, "music")


def test_names_are_generated_marked_and_saved(tiny_names_model, tmp_path):
    import shutil

    from app.web.app import generate_names, names_html

    models = tmp_path / "models"
    shutil.copytree(tiny_names_model, models / "tiny")
    res = generate_names(models, "tiny", n=30, temperature=1.0, seed=3, out_dir=tmp_path / "out")
    from app.names.generator import NameGenerator

    train = set(NameGenerator.load(models / "tiny").train_names)
    assert len(res.names) == 30
    assert res.new == [n not in train for n in res.names]
    assert res.txt.read_text().splitlines() == res.names
    page = names_html(res)
    assert page.count("<li>") == 30 and page.count("new-badge") == sum(res.new)
    again = generate_names(models, "tiny", n=30, seed=3, out_dir=tmp_path / "out")
    assert again.names == res.names and again.txt != res.txt  # same seed, same names; never overwritten
    novel = generate_names(models, "tiny", n=10, novel_only=True, prefix="a", seed=1)
    assert all(novel.new) and all(n.startswith("a") for n in novel.names) and novel.txt is None
    with pytest.raises(OptionError, match="count"):
        generate_names(models, "tiny", n=0)
    with pytest.raises(OptionError, match="seed"):
        generate_names(models, "tiny", n=3, seed="abc")


def test_job_progress_text():
    from app.web.app import job_markdown

    base = {"name": "t", "base": None, "units": 64, "epochs": 2, "files": ["a.mid"], "upload_skipped": [],
            "history": [], "elapsed": 3.0, "stage": "training", "result": None, "message": ""}
    assert "Starting" in job_markdown({**base, "state": "queued", "position": 0})
    assert "1 job(s) before yours" in job_markdown({**base, "state": "queued", "position": 1, "running_name": "x"})
    text = job_markdown({**base, "state": "running", "history": [{"epoch": 1, "loss": 2.0, "val_loss": 2.5}]})
    assert "| 1 | 2.0000 | 2.5000 |" in text
    assert "Error: boom" in job_markdown({**base, "state": "failed", "message": "boom"})
