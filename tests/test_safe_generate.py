"""Generation outputs across processes and crashes (issue 12, items 2 and 4; acceptance 3 and 4): names are
reserved atomically, a melody's .mid/.wav/.png appear together or not at all, FluidSynth dies with its parent, and
the next run cleans what a crash left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.outputs import OutputSet, clean_partial, new_folder, write_new
from tests.faults import crash_points
from tests.music_fixtures import default_generate_suffixes

ROOT = Path(__file__).resolve().parents[1]
FOLK = ROOT / "models" / "folk"


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _reserve_many(folder: Path, kind: str, n: int) -> list[str]:
    """n forked processes reserve names in `folder` at the same instant; returns what each got."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.read(go_r, 1)  # all start together
            if kind == "file":
                got = write_new(folder, "stamp", ".txt", f"{i}\n").name
            elif kind == "set":
                out = OutputSet.reserve(folder, "stamp_1", (".mid", ".wav"))
                for s in out.suffixes:
                    out.temp(s).write_text(str(i))
                out.publish()
                got = out.stem
            else:
                got = new_folder(folder, "stamp").name
            os.write(w, (got + "\n").encode())
            os._exit(0)
        pids.append(pid)
    os.close(w)
    os.write(go_w, b"x" * n)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    return os.read(r, 1 << 16).decode().split()


@pytest.mark.parametrize("kind", ["file", "set", "folder"])
def test_concurrent_reservations_get_distinct_names(tmp_path, kind):
    got = _reserve_many(tmp_path, kind, 12)
    assert len(got) == 12 and len(set(got)) == 12
    visible = sorted(p.name for p in tmp_path.iterdir())
    assert not [v for v in visible if v.startswith(".")]
    if kind == "file":
        assert sorted(p.read_text() for p in tmp_path.iterdir()) == sorted(f"{i}\n" for i in range(12))
    if kind == "set":
        for stem in got:
            assert (tmp_path / f"{stem}.mid").read_text() == (tmp_path / f"{stem}.wav").read_text()


def test_a_stale_partial_set_is_taken_back_but_a_live_one_is_left(tmp_path):
    out = OutputSet.reserve(tmp_path, "a", (".mid", ".wav"))
    out.temp(".mid").write_text("m")
    out.temp(".wav").write_text("w")
    os.rename(out.temp(".mid"), out.path(".mid"))  # died in the middle of publishing
    assert clean_partial(tmp_path) == 0  # we are alive: not touched
    (out.work / "pid").write_text('{"pid": 999999999, "suffixes": [".mid", ".wav"]}')  # as if dead
    assert clean_partial(tmp_path) == 1
    assert sorted(os.listdir(tmp_path)) == []  # the lone .mid went with it


def _melody_sets(folder: Path) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {}
    for p in folder.iterdir():
        if not p.name.startswith("."):
            sets.setdefault(p.stem, set()).add(p.suffix)
    return sets


@pytest.mark.slow
def test_a_crash_at_any_step_of_generate_leaves_whole_melodies_and_the_next_run_cleans(tmp_path):
    import pretty_midi

    from app.music.generate import generate_files

    out = tmp_path / "music"
    crashes = 0
    for k in crash_points(lambda: generate_files(FOLK, out, n=2, bars=1, seed=3, synth="builtin")):
        crashes += 1
        if out.exists():
            for stem, suffixes in _melody_sets(out).items():  # a set cut short while publishing is still claimed
                assert suffixes == {".mid", ".wav", ".png"} or (out / f".{stem}.partial").is_dir(), (k, suffixes)
            clean_partial(out)  # what the next run does first
            assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
            for stem, suffixes in _melody_sets(out).items():
                assert suffixes == {".mid", ".wav", ".png"}, (k, stem, suffixes)  # all or nothing
                pretty_midi.PrettyMIDI(str(out / f"{stem}.mid"))
            for p in out.iterdir():
                p.unlink()
    assert crashes > 6
    assert {s: v for s, v in _melody_sets(out).items()} and all(
        v == {".mid", ".wav", ".png"} for v in _melody_sets(out).values())


def _children(pid: int) -> list[int]:
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a killed process whose exit nobody has collected yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_generate_leaves_no_fluidsynth_and_the_next_run_cleans(tmp_path):
    from app.music.synth import fluidsynth_available

    if fluidsynth_available() is None:
        pytest.skip("FluidSynth or a General MIDI SoundFont is not installed")
    out = tmp_path / "music"
    proc = subprocess.Popen([sys.executable, "-m", "app", "music", "generate", "-n", "16", "--bars", "32",
                             "--seed", "1", "--out-dir", str(out)], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids, end = [], time.time() + 120
    while not kids and time.time() < end and proc.poll() is None:
        kids = _children(proc.pid)
        time.sleep(0.05)
    assert kids, "no FluidSynth child was seen"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    end = time.time() + 10
    while time.time() < end and any(_running(k) for k in kids):
        time.sleep(0.1)
    alive = [k for k in kids if _running(k)]
    assert not alive, f"FluidSynth processes outlived their parent: {alive}"
    assert [p for p in out.iterdir() if p.name.startswith(".")], "the kill should have left temporaries"
    expected = default_generate_suffixes(_env())
    for stem, suffixes in _melody_sets(out).items():
        assert suffixes == expected
    # the next run cleans them
    subprocess.run([sys.executable, "-m", "app", "music", "generate", "-n", "1", "--bars", "1", "--synth", "builtin",
                    "--out-dir", str(out)], cwd=ROOT, env=_env(), check=True, capture_output=True)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_ten_concurrent_music_and_ten_names_generates_into_one_folder(tmp_path):
    """Acceptance 3: ten distinct complete outputs each."""
    import pretty_midi

    out = tmp_path / "D"
    music = [subprocess.Popen([sys.executable, "-m", "app", "music", "generate", "-n", "1", "--bars", "2",
                               "--out-dir", str(out / "music")], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(10)]
    names = [subprocess.Popen([sys.executable, "-m", "app", "names", "generate", "-n", "5", "--out-dir",
                               str(out / "names")], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(10)]
    printed_mid, printed_txt, name_lists = set(), set(), []
    for p in music:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr.decode()
        printed_mid.add(stdout.decode().split()[0])
    for p in names:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr.decode()
        printed_txt.add(stderr.decode().rsplit("written to ", 1)[1].strip())
        name_lists.append(stdout.decode().split())
    sets = _melody_sets(out / "music")
    assert len(printed_mid) == 10 and len(sets) == 10
    assert all(v == default_generate_suffixes(_env()) for v in sets.values())
    for stem in sets:
        pretty_midi.PrettyMIDI(str(out / "music" / f"{stem}.mid"))
        assert (out / "music" / f"{stem}.wav").stat().st_size > 44
    txts = sorted((out / "names").iterdir())
    assert len(printed_txt) == 10 and len(txts) == 10
    assert sorted(p.read_text().split() for p in txts) == sorted(name_lists)  # each run's own names, whole


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
@pytest.mark.parametrize("with_setpriv", [True, False])
def test_a_wrapped_child_dies_when_its_parent_is_killed(with_setpriv):
    """dies_with_us (setpriv, or the python -S fallback): the parent is killed, its child goes with it."""
    code = ("import subprocess, sys, time, shutil\n"
            "import app.music.synth as s\n"
            + ("" if with_setpriv else "s.shutil.which = lambda name: None\n") +
            "p = subprocess.Popen(s.dies_with_us(['sleep', '60']))\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=_env(), stdout=subprocess.PIPE)
    child = int(parent.stdout.readline())
    time.sleep(0.3)  # let the wrapper exec sleep
    assert _running(child)
    parent.kill()
    parent.wait()
    end = time.time() + 10
    while time.time() < end and _running(child):
        time.sleep(0.05)
    assert not _running(child)
