"""Streamed corpora (TFRecord shards read by tf.data) and strategy selection (no GPU or cluster needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.distribute import Placement, cudnn_warning, is_chief_task, read_tf_config, resolve
from app.core.modelconfig import TrainConfig
from app.errors import OptionError
from app.music.codec import MelodyCodec
from app.music.shards import load_shards, transpose_ids, write_pieces
from app.music.train import MusicData, load_music_data, sequence_chunks, train_music


def pieces(codec: MelodyCodec, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.array([t for p in rng.integers(4, codec.size - 4, int(rng.integers(3, 12))) for t in (p, 0, 1)],
                     np.int32) for _ in range(n)]


def music_data(codec: MelodyCodec) -> MusicData:
    return MusicData(train=pieces(codec, 30, 0), val=pieces(codec, 5, 1), vocab=codec.vocab,
                     source={"path": "synthetic", "sha256": "0" * 64},
                     codec={"min_pitch": codec.min_pitch, "max_pitch": codec.max_pitch, "steps_per_quarter": 4,
                            "time_signature": [4, 4], "qpm": 120.0})


def rows(x, y, w) -> list[tuple]:
    return sorted((tuple(a), tuple(b), tuple(c)) for a, b, c in zip(x.tolist(), y.tolist(), w.tolist()))


def test_transpose_ids_moves_notes_only_and_refuses_to_leave_the_vocabulary():
    ids = np.array([2, 0, 1, 5, 0], np.int32)
    np.testing.assert_array_equal(transpose_ids(ids, 3, 10), [5, 0, 1, 8, 0])
    assert transpose_ids(ids, -1, 10) is None and transpose_ids(ids, 5, 10) is None
    np.testing.assert_array_equal(transpose_ids(np.array([0, 1, 0]), 7, 10), [0, 1, 0])


def test_shards_stream_exactly_the_in_memory_chunks(tmp_path):
    codec = MelodyCodec(60, 72)
    data = music_data(codec)
    manifest = write_pieces(data, tmp_path / "shards", shards=3, augment=1)
    expected = [p2 for p in data.train for s in (-1, 0, 1) if (p2 := transpose_ids(p, s, codec.size)) is not None]
    assert manifest["train_pieces"] == len(expected) and len(manifest["shards"]) == 3
    assert manifest["train_tokens"] == sum(len(p) for p in expected)
    stream, val, _ = load_shards(tmp_path / "shards")
    assert [v.tolist() for v in val] == [v.tolist() for v in data.val]
    tx, batch = 8, 5
    ds = stream.train_dataset(tx, batch, seed=0, shuffle_buffer=64)
    got = [tuple(t.numpy() for t in b) for b in ds]
    assert sum(len(b[0]) for b in got) == stream.chunks(tx) == len(sequence_chunks(expected, tx)[0])
    for x, y, w in got:  # weights rescaled per batch to average 1 over its cells: per-token mean loss
        assert w.mean() == pytest.approx(1.0, rel=1e-5)
    x, y, w = (np.concatenate([b[i] for b in got]) for i in range(3))
    ex, ey, ew = sequence_chunks(expected, tx)
    assert rows(x, y, w > 0) == rows(ex, ey, ew > 0)
    with pytest.raises(OptionError, match="3 shard file"):
        stream.train_dataset(tx, batch, seed=0, workers=4)


@pytest.mark.slow  # trains a model
def test_music_train_streams_a_shard_folder(tmp_path):
    codec = MelodyCodec(60, 72)
    write_pieces(music_data(codec), tmp_path / "shards", shards=2)
    data = load_music_data(tmp_path / "shards")
    assert data.stream is not None and data.train == [] and len(data.val) == 5
    from app.core.modelconfig import ModelConfig

    card = train_music(data, tmp_path / "m", ModelConfig(units=8),
                       TrainConfig(epochs=2, batch_size=8, distribute="none"), tx=16, progress=False)
    assert card["epochs_done"] == 2
    assert card["data"]["streamed"] and card["data"]["train_pieces"] == 30
    assert card["distribute"]["strategy"] == "none" and card["distribute"]["replicas"] == 1
    assert np.isfinite(card["metrics"]["validation"]["nll_nats_per_step"])


def test_distribute_choice_is_validated_and_auto_picks_mirrored_for_several_gpus(monkeypatch):
    with pytest.raises(OptionError, match="distribute must be one of"):
        TrainConfig(distribute="horovod")
    assert resolve("auto", gpus=0) == resolve("auto", gpus=1) == "none"
    assert resolve("auto", gpus=2) == "mirrored" and resolve("multi-worker", gpus=0) == "multi-worker"


@pytest.mark.parametrize("value, match", [
    (None, "needs the TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ('{"cluster": {}}', "no cluster with workers"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "not one of its cluster"),
])
def test_bad_tf_config_is_a_clear_error(monkeypatch, value, match):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(OptionError, match=match):
        read_tf_config()


def test_chief_is_the_chief_task_or_worker_0(monkeypatch):
    two = {"worker": ["a:1", "b:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": two, "task": {"type": "worker", "index": 1}}))
    assert not is_chief_task(read_tf_config())
    assert is_chief_task({"cluster": two, "task": {"type": "worker", "index": 0}})
    with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
    assert is_chief_task({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not is_chief_task({"cluster": with_chief, "task": {"type": "worker", "index": 0}})


def test_recurrent_dropout_on_a_gpu_warns_about_cudnn(tmp_path):
    gpu = Placement(None, "none", 1, 1, True, ["GPU NVIDIA H100"])
    cpu = Placement(None, "none", 1, 1, True, ["CPU (2 cores)"])
    assert "cuDNN" in cudnn_warning(0.3, gpu) and cudnn_warning(0.0, gpu) is None
    assert cudnn_warning(0.3, cpu) is None
    assert gpu.global_batch(32) == 32 and Placement(None, "mirrored", 8, 1, True, []).global_batch(32) == 256
    worker = Placement(None, "multi-worker", 2, 2, False, [])
    private = worker.write_path(tmp_path / "model")
    assert private.name == "model" and not str(private).startswith(str(tmp_path))
    worker.cleanup()
    assert not private.parent.exists()
