"""The web page in a real browser: headless Debian Chromium driven by Playwright (no browser download).

A server (`python -m app web`) is started on a free local port against a models folder holding a tiny names model
and a tiny melody model; each test drives the page like a user, checks what appears, and saves a screenshot in its
temporary folder (and in $WEB_SCREENSHOTS_DIR when set, which is how docs/screenshots/ is made). Every test also
checks that the page asked nothing of any host but the local server.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest


CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,  # starts the server and a browser
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium); "
                                                     "`make test` installs it as root"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="the playwright Python package is not installed (it is in requirements.txt)"),
]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GENERATE_TIMEOUT_MS = 60_000
TRAIN_TIMEOUT_MS = 150_000


def tiny_music_model(path: Path) -> Path:
    """A melody model folder with 16 random-weight LSTM units (pitches 48..84, 4/4), made in a second."""
    from app.core.folder import save_model_folder
    from app.core.model import build_model, export_weights, import_weights
    from app.core.modelconfig import ModelConfig
    from app.music.codec import MelodyCodec

    codec = MelodyCodec(48, 84)
    cfg = ModelConfig(cell="lstm", units=16, layers=1, input="onehot")
    model = build_model(cfg, codec.size, seed=0)
    rng = np.random.default_rng(0)
    w = {k: rng.normal(0, 1.0, v.shape).astype(np.float32) for k, v in export_weights(model, cfg).items()}
    w["head/bias"][2:] += 1.0  # favour note-ons so short melodies have notes
    import_weights(model, cfg, w)
    meta = {"min_pitch": 48, "max_pitch": 84, "steps_per_quarter": 4, "time_signature": [4, 4], "qpm": 120.0}
    return save_model_folder(path, keras_model=model, weights=w, vocab=codec.vocab,
                             config={"domain": "music", "model": dataclasses.asdict(cfg), "train": {},
                                     "codec": meta}, card={"name": path.name, "status": "done"})


def tune_midi(path: Path, seed: int) -> Path:
    """A 32-note melody (C major, eighth notes) as a MIDI file."""
    import random

    from tests.music_fixtures import midi_bytes

    rng = random.Random(seed)
    notes = [(60 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12]), i * 0.5, i * 0.5 + 0.5) for i in range(32)]
    path.write_bytes(midi_bytes([{"notes": notes, "program": 0, "name": "melody"}]))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_names_model, tmp_path_factory):
    """`python -m app web` on a free port; yields (url, models_dir); stopped (and checked) at the end."""
    base = tmp_path_factory.mktemp("web")
    models = base / "models"
    shutil.copytree(tiny_names_model, models / "tinynames")
    tiny_music_model(models / "tinyfolk")
    port = free_port()
    log = open(base / "server.log", "wb")
    env = {**os.environ, "GRADIO_TEMP_DIR": str(base / "gradio-tmp"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "web", "--port", str(port), "--models-dir", str(models),
                             "--outputs-dir", str(base / "outputs")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"the web server exited with {proc.returncode}:\n{(base / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            proc.kill()
            pytest.fail("the web server did not answer within 90 s")
        time.sleep(0.3)
    yield url, models
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    text = (base / "server.log").read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server; `page.external` lists requests to any other host."""
    url, _ = server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(GENERATE_TIMEOUT_MS)
    pg.external = []
    pg.on("request", lambda r: pg.external.append(r.url)
          if not r.url.startswith((url, "data:", "blob:")) else None)
    pg.goto(url)
    pg.wait_for_selector("#names-generate")
    yield pg
    context.close()


def finish(page, tmp_path: Path, name: str) -> Path:
    """Screenshot into tmp_path (and $WEB_SCREENSHOTS_DIR); the page must have stayed on the local server."""
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("WEB_SCREENSHOTS_DIR"):
        out = Path(os.environ["WEB_SCREENSHOTS_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out / f"{name}.png")
    assert shot.stat().st_size > 10_000
    assert page.external == [], f"the page contacted other hosts: {page.external[:5]}"
    assert "Traceback" not in page.content()
    return shot


def wait_until(cond, timeout: float = GENERATE_TIMEOUT_MS / 1000) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.2)
    return bool(cond())


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def test_generate_names_and_see_them(page, tmp_path):
    set_slider(page, "names-count", 8)
    page.locator("#names-seed textarea, #names-seed input").first.fill("7")
    page.click("#names-generate")
    items = page.locator("#names-output li")
    items.nth(7).wait_for()
    assert items.count() == 8
    names = [t.strip() for t in page.locator("#names-output li .name").all_inner_texts()]
    assert len(names) == 8 and all(n and n.isprintable() for n in names)
    assert "8 names" in page.locator("#names-output .names-summary").inner_text()
    page.locator("#names-file").get_by_text(".txt").first.wait_for()
    finish(page, tmp_path, "names")


def test_generate_melodies_and_see_player_and_picture(page, tmp_path):
    open_tab(page, "Music")
    set_slider(page, "music-count", 2)
    set_slider(page, "music-bars", 4)
    page.click("#music-generate")
    for k in (0, 1):
        page.locator(f"#music-image-{k} img").wait_for()
        assert page.locator(f"#music-image-{k} img").evaluate("img => img.complete && img.naturalWidth > 100")
        player = page.locator(f"#music-audio-{k}")
        player.get_by_role("button", name="Play", exact=True).wait_for()  # the audio player, the WAV decoded in it
        decoded = player.locator("audio[src^='blob:']")  # inside the waveform's shadow DOM (locators pierce it)
        decoded.wait_for(state="attached")
        assert wait_until(lambda: (decoded.evaluate("a => a.duration") or 0) > 4)  # 4 bars at 120 qpm: 8 s
        assert player.locator("a[download]").first.get_attribute("href").endswith(".wav")
        page.locator(f"#music-mid-{k}").get_by_text(".mid").first.wait_for()
    assert not page.locator("#music-out-2").is_visible()  # only as many outputs as asked for
    page.locator("#music-audio-0").scroll_into_view_if_needed()
    finish(page, tmp_path, "music")


def test_upload_three_midi_files_and_retrain_one_epoch(page, server, tmp_path):
    _, models = server
    files = [str(tune_midi(tmp_path / f"tune{k}.mid", k)) for k in range(3)]
    open_tab(page, "Retrain")
    page.locator("#retrain-files input[type=file]").set_input_files(files)
    page.locator("#retrain-files").get_by_text("tune2", exact=True).first.wait_for()  # shown as "tune2" ".mid"
    page.locator("#retrain-name textarea, #retrain-name input").first.fill("Web Tune")
    set_slider(page, "retrain-epochs", 1)
    page.click("#retrain-train")
    status = page.locator("#retrain-status")
    status.get_by_text("It is now in the Music tab's model list").wait_for(timeout=TRAIN_TIMEOUT_MS)
    text = status.inner_text()
    assert text.startswith("Done: web-tune") and "fine-tuning tinyfolk" in text, text
    rows = page.locator("#retrain-status table tbody tr")
    assert rows.count() == 1 and rows.first.locator("td").first.inner_text().strip() == "1"  # epoch 1: loss, val
    report = page.locator("#retrain-report textarea").input_value()
    assert "kept 3" in report, report
    assert (models / "web-tune" / "weights.npz").is_file()
    assert not list(models.glob(".training-*"))
    open_tab(page, "Music")
    page.locator("#music-model input").click()
    page.get_by_role("option", name="web-tune").wait_for()
    page.keyboard.press("Escape")
    open_tab(page, "Retrain")
    finish(page, tmp_path, "retrain")


def test_bad_upload_shows_an_error_message(page, tmp_path):
    bad = tmp_path / "notes.mid"
    bad.write_text("these are my notes, not a MIDI file")
    open_tab(page, "Retrain")
    page.locator("#retrain-files input[type=file]").set_input_files([str(bad)])
    page.locator("#retrain-files").get_by_text("notes", exact=True).first.wait_for()
    page.locator("#retrain-name textarea, #retrain-name input").first.fill("bad")
    page.click("#retrain-train")
    err = page.locator("#retrain-status .status-error")
    err.wait_for()
    assert "notes.mid" in err.inner_text() and "not a MIDI file" in err.inner_text()
    finish(page, tmp_path, "retrain-error")
