"""Web page safety (issue 12, items 15-17; acceptance 5): no server path in any message, only the current
response's files are served (jobs and work files never), hostile primers are refused or read outside the server
process, and a retraining job's size is checked before it queues."""

from __future__ import annotations

import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app.errors import AppError, DataError, ModelFolderError
from app.web.app import generate_music, public_message, resolve_model, response_folder
from app.web.uploads import UploadLimits, midi_extent
from tests.music_fixtures import melody_midi, midi_bytes
from tests.test_web_browser import server  # noqa: F401  (the fixture: `python -m app web` on a free port)

ROOT = Path(__file__).resolve().parents[1]


def hostile_midi(size: int = 101, ticks: int = 9_999_990) -> bytes:
    """A small MIDI file (resolution 1) with one note `ticks` long: 40 million steps at 4 per quarter."""

    def vlq(n: int) -> bytes:
        out = [n & 0x7F]
        while n > 0x7F:
            n >>= 7
            out.append(0x80 | (n & 0x7F))
        return bytes(reversed(out))

    events = b"\x00\x90\x3c\x64" + vlq(ticks) + b"\x80\x3c\x00"
    pad = size - 14 - 8 - len(events) - 4 - 4
    name = b"\x00\xff\x03" + vlq(pad) + b"x" * pad
    track = name + events + b"\x00\xff\x2f\x00"
    data = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1) + b"MTrk" + struct.pack(">I", len(track)) + track
    assert len(data) == size
    return data


def test_midi_extent_scans_without_building(tmp_path):
    ok = tmp_path / "ok.mid"
    ok.write_bytes(melody_midi())
    assert midi_extent(ok).quarters == 18.0 and midi_extent(ok).notes == 16
    bad = tmp_path / "long.mid"
    bad.write_bytes(hostile_midi())
    assert midi_extent(bad).quarters == 9_999_990
    t = time.perf_counter()
    with pytest.raises(DataError, match="longer than 1,024 quarter notes"):
        midi_extent(bad, max_quarters=1024)
    assert time.perf_counter() - t < 0.1
    dense = tmp_path / "dense.mid"
    dense.write_bytes(midi_bytes([{"notes": [(40 + k % 60, 0, 1) for k in range(3000)], "program": 0}]))
    with pytest.raises(DataError, match="more than 2,000 notes"):
        midi_extent(dense, max_notes=2000)
    cut = tmp_path / "cut.mid"
    cut.write_bytes(melody_midi()[:-9])
    with pytest.raises(DataError, match="not a readable MIDI file"):
        midi_extent(cut)


def test_public_message_hides_server_paths(tmp_path):
    msg = ("primer MIDI '/tmp/gradio/4f2a9c/upload tune.mid' gives no melody; music model 'x' is not available "
           "in /srv/app/models and /srv/app/outputs/jobs/1/train.log")
    out = public_message(msg, {"/srv/app/models": "the models folder"})
    assert "/tmp" not in out and "/srv" not in out
    assert "the models folder" in out and "train.log" in out and "gradio" not in out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tests.test_web_browser import tiny_music_model

    root = tmp_path_factory.mktemp("models")
    tiny_music_model(root / "tinyfolk")
    return root.resolve()


def test_errors_name_no_server_path(models, tmp_path):
    with pytest.raises(ModelFolderError) as err:
        resolve_model(models, "nope", "music")
    assert str(models) not in str(err.value) and "not available on this server" in str(err.value)
    upload = tmp_path / "gradio" / "0a1b2c" / "drums.mid"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(midi_bytes([{"notes": [(36, 0, 1), (38, 1, 2)], "is_drum": True, "program": 0}]))
    with pytest.raises(AppError) as err:
        generate_music(models, "tinyfolk", primer=str(upload), out_root=tmp_path / "files", synth="builtin")
    text = public_message(str(err.value), {str(upload): upload.name})
    assert "drums.mid" in text and str(tmp_path) not in text and "/" not in text.replace("drums.mid", "")


def test_a_hostile_primer_is_refused_at_once_and_never_read_in_the_server(models, tmp_path, monkeypatch):
    import app.music.midi_io as midi_io

    uploads = tmp_path / "uploads"

    def guard(real):
        def read(path, *a, **k):  # the server reads only the clean copy the child wrote
            assert uploads not in Path(path).parents, "an uploaded primer was read inside the server process"
            return real(path, *a, **k)
        return read

    monkeypatch.setattr(midi_io, "read_melody", guard(midi_io.read_melody))
    monkeypatch.setattr(midi_io, "read_midi", guard(midi_io.read_midi))
    uploads.mkdir()
    bad = uploads / "hostile.mid"
    bad.write_bytes(hostile_midi())
    t = time.perf_counter()
    with pytest.raises(DataError, match="hostile.mid.*longer than"):
        generate_music(models, "tinyfolk", primer=str(bad), out_root=tmp_path / "files", synth="builtin")
    assert time.perf_counter() - t < 2.0
    good = uploads / "tune.mid"
    good.write_bytes(melody_midi([(67, 0, 1), (69, 1, 2), (71, 2, 3), (72, 3, 4)]))
    res = generate_music(models, "tinyfolk", bars=2, primer=str(good), out_root=tmp_path / "files", seed=1,
                         synth="builtin", work_dir=tmp_path / "work")
    assert res[0]["primer_steps"] > 0 and list((tmp_path / "work").iterdir()) == []  # read by the child


def test_response_folders_are_unguessable_and_separate(tmp_path):
    a, b = response_folder(tmp_path), response_folder(tmp_path)
    assert a.parent == b.parent == tmp_path / "files" and a != b
    assert len(a.name) == 32 and int(a.name, 16) >= 0


def test_retrain_job_size_is_checked_before_it_queues(tmp_path):
    import zipfile

    from app.web.jobs import TrainingQueue

    ran = []
    q = TrainingQueue(tmp_path / "models", tmp_path / "jobs", runner=lambda *a: ran.append(a))
    z = tmp_path / "up.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for k in range(4):
            zf.writestr(f"h{k}.mid", hostile_midi())
    with pytest.raises(DataError, match="no MIDI file of the upload can be used.*longer than"):
        q.submit([str(z)], "big")
    tight = UploadLimits(max_job_quarters=20)
    q2 = TrainingQueue(tmp_path / "models", tmp_path / "jobs2", limits=tight, runner=lambda *a: ran.append(a))
    files = []
    for k in range(3):
        files.append(tmp_path / f"t{k}.mid")
        files[-1].write_bytes(melody_midi())
    with pytest.raises(DataError, match="54 quarter notes long in all"):
        q2.submit([str(f) for f in files], "three")
    assert not ran and list((tmp_path / "jobs2").iterdir()) == []


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_the_server_serves_no_job_or_work_file(server):
    """Files under outputs/jobs, outputs/work or any old layout are refused; response files live in folders named
    by 128 random bits."""
    url, models = server
    outputs = (models.parent / "outputs").resolve()
    secret = outputs / "jobs" / "20260101-000000-abcdef" / "spec.json"
    secret.parent.mkdir(parents=True)
    secret.write_text('{"upload_dir": "/srv/secret"}')
    for leaked in (secret, outputs / "work" / "x.mid", outputs / "names" / "20260101-000000.txt"):
        leaked.parent.mkdir(parents=True, exist_ok=True)
        if not leaked.exists():
            leaked.write_text("private")
        assert _status(f"{url}gradio_api/file={leaked}") == 403, leaked
    from gradio_client import Client

    client = Client(url, verbose=False)
    status, page, txt = client.predict("tinynames", 5, 1.0, "", "", False, "", api_name="/names")
    assert not status and Path(txt).read_text().count("\n") == 5
    folders = [p.name for p in (outputs / "files").iterdir()]
    assert folders and all(len(n) == 32 and int(n, 16) >= 0 for n in folders)
