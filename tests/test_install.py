"""`pip install <repo>` into a fresh venv gives a working `lstm-app` from any folder (issue 13, acceptance 4).

What this proves: a normal (non-editable) install of this repository, run from a folder outside it with no
PYTHONPATH and no APP_HOME, imports the *installed* package (checked) and finds the shipped models through the
install's data files (app.core.paths), so `lstm-app names generate -n 5` and `lstm-app music generate` work.
What it does not prove: that pip resolves our dependency ranges from PyPI. To stay offline and fast, the fresh
venv sees the test interpreter's site-packages through a .pth file (TensorFlow, numpy, ... are not downloaded
again) and the package is installed with --no-deps --no-build-isolation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_pip_install_gives_a_working_cli_outside_the_repo(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "shared_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    src = tmp_path / "src"  # a clean copy of the tracked tree: the build must not depend on local leftovers
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            (src / f).write_bytes((ROOT / f).read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "APP_HOME")}
    env["PIP_NO_INDEX"] = "1"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
                   check=True, env=env, timeout=600, cwd=tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import app; print(app.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), f"imported {where}, not the installed package"

    cli = str(venv / "bin" / "lstm-app")
    names = subprocess.run([cli, "names", "generate", "-n", "5", "--seed", "1"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
    assert names.returncode == 0, names.stderr
    assert len(names.stdout.split()) == 5
    music = subprocess.run([cli, "music", "generate", "--seed", "1", "--synth", "builtin"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
    assert music.returncode == 0, music.stderr
    written = sorted(p.suffix for p in (work / "outputs" / "music").iterdir())
    from tests.music_fixtures import default_generate_suffixes

    assert set(written) == default_generate_suffixes() and len(written) == len(set(written))
