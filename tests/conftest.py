"""Shared fixtures: a tiny names model trained once per test session (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DINOS = ROOT / "data" / "dinos.txt"


def pytest_collection_modifyitems(items):
    """A test that needs the trained `tiny_names_model` trains a model (once per session): it is slow."""
    for item in items:
        if "tiny_names_model" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_names_model(tmp_path_factory) -> Path:
    """A names model folder trained for 2 epochs on the dinosaur list (16 LSTM units)."""
    from app.core.modelconfig import ModelConfig, TrainConfig
    from app.names.train import train_names_model

    out = tmp_path_factory.mktemp("models") / "tiny"
    train_names_model(DINOS, out, ModelConfig(units=16, dropout=0.1), TrainConfig(epochs=2, batch_size=64),
                      progress=False)
    return out
