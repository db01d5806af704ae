"""Multi-worker training on localhost (TF_CONFIG, gRPC, CPU): identical weights on both workers, the same loss
as one process with the same global batch, and only the chief writes files. Slow: starts three TF processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "distributed_worker.py"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def env_for(tf_config: dict | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def load(dump: Path) -> tuple[list[np.ndarray], dict]:
    with np.load(dump) as z:
        weights = [z[f"w{i}"] for i in range(len(z.files) - 1)]
        return weights, json.loads(str(z["history"]))


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["names", "music"])
def test_two_workers_match_one_process_and_only_the_chief_writes(tmp_path, domain):
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    dirs = [tmp_path / f"worker{i}" for i in range(2)]
    procs = []
    for i, d in enumerate(dirs):
        d.mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, str(WORKER), domain, "multi-worker", "4", str(tmp_path / f"dump{i}.npz")], cwd=d,
            env=env_for({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    single = tmp_path / "single"
    single.mkdir()
    r = subprocess.run([sys.executable, str(WORKER), domain, "none", "8", str(tmp_path / "dump_single.npz")],
                       cwd=single, env=env_for(None), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    (w0, h0), (w1, h1), (ws, hs) = (load(tmp_path / f) for f in ("dump0.npz", "dump1.npz", "dump_single.npz"))
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)  # all-reduce keeps the replicas identical
    assert len(h0["loss"]) == len(hs["loss"]) == 2
    assert abs(h0["loss"][-1] - hs["loss"][-1]) <= 0.02 * hs["loss"][-1]
    assert abs(h0["val_loss"][-1] - hs["val_loss"][-1]) <= 0.02 * hs["val_loss"][-1]

    chief_files = sorted(p.name for p in dirs[0].iterdir())
    assert {"model", "logs"} <= set(chief_files) and not any(n.endswith(".run") for n in chief_files)
    card = json.loads((dirs[0] / "model" / "card.json").read_text())
    assert card["distribute"] == {"strategy": "multi-worker", "replicas": 2, "workers": 2,
                                  "devices": card["distribute"]["devices"]}
    expected_inputs = {"names": ["names.txt"], "music": []}[domain]
    assert sorted(p.name for p in dirs[1].iterdir()) == expected_inputs  # the other worker wrote nothing


@pytest.mark.slow
def test_mirrored_over_two_devices_matches_one_device(tmp_path):
    """MirroredStrategy (the multi-GPU path) over two logical CPUs: same loss as one device, same global batch."""
    runs = {}
    for name, distribute, batch in (("mirrored", "mirrored-cpu2", "4"), ("single", "none", "8")):
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run([sys.executable, str(WORKER), "music", distribute, batch, str(tmp_path / f"{name}.npz")],
                           cwd=d, env=env_for(None), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        runs[name] = load(tmp_path / f"{name}.npz")[1]
    assert abs(runs["mirrored"]["loss"][-1] - runs["single"]["loss"][-1]) <= 0.02 * runs["single"]["loss"][-1]
    card = json.loads((tmp_path / "mirrored" / "model" / "card.json").read_text())
    assert card["distribute"]["strategy"] == "mirrored" and card["distribute"]["replicas"] == 2
