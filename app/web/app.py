"""The local web page (Gradio): Names, Music and Retrain tabs over the library.

Nothing is implemented twice: names come from app.names.generator, melodies and their .mid/.wav/.png from
app.music.generate, retraining from app.music.corpus + app.music.train (through app.web.jobs). The functions
above `build_app` are plain Python (no Gradio) and are what the page's handlers call; handlers turn AppError
messages into a status line on the page and never show a traceback (unexpected errors are logged on the server
and summarised in one line).

Models are offered by folder name: every folder under the models directory whose config.json says "names" (Names
tab) or "music" (Music and Retrain tabs); hidden folders (a model being trained) are not listed. A request naming
any other model is refused, so the page cannot be used to read arbitrary paths.

Outputs: every response writes into its own folder <outputs>/files/<32 random hex digits>/ (<timestamp>.txt, or
<timestamp>_<k>.{mid,wav,png,abc,musicxml,svg}); only <outputs>/files is served (`served_root`), so nobody can fetch another
response's files without its random name, and job internals (<outputs>/jobs: spec.json, train.log, uploads) and
primer work files (<outputs>/work) are never served. Gradio hands the page copies of the response's files under
names derived from a per-server secret.

Messages never show server paths (`public_message`): known folders become words ("the models folder"), any other
absolute path its last component. Primer files are read in a bounded child process (app.web.primer).
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import AppError, ModelFolderError, OptionError
from app.web.uploads import UploadLimits

log = logging.getLogger("app.web")

MAX_NAMES = 200
MAX_MELODIES = 4  # output slots on the Music tab
MAX_WEB_BARS = 64
MODEL_METRE = "model's own"
WEB_METRES = ("4/4", "3/4", "6/8", "2/4", "2/2", "9/8", "12/8")
PRIMER_ABC_CHARS = 20_000  # pasted ABC primer (app.music.limits.PRIMER_LIMITS.max_tune_chars)
NEW_MODEL = "(new model)"
KEYS = ("any", "C", "G", "D", "A", "E", "F", "Bb", "Eb", "Am", "Em", "Bm", "Dm", "Gm", "D dorian", "A dorian",
        "G mixolydian", "C major-pentatonic", "A minor-pentatonic", "D blues", "chromatic")
INSTRUMENTS = (("Acoustic grand piano", 0), ("Electric piano", 4), ("Vibraphone", 11), ("Church organ", 19),
               ("Nylon guitar", 24), ("Violin", 40), ("Cello", 42), ("String ensemble", 48), ("Trumpet", 56),
               ("Clarinet", 71), ("Flute", 73), ("Pan flute", 75), ("Fiddle", 110))


@dataclass
class WebConfig:
    models_dir: Path = Path("models")
    outputs_dir: Path = Path("outputs/web")
    limits: UploadLimits = field(default_factory=UploadLimits)
    max_waiting_jobs: int = 3
    synth: str = "auto"


# --- served files and messages ----------------------------------------------------------------------------------------
def served_root(outputs_dir: str | Path) -> Path:
    """The only folder under the outputs folder whose files the page may serve."""
    return Path(outputs_dir) / "files"


def response_folder(outputs_dir: str | Path) -> Path:
    """A new folder for one response's files, named by 128 random bits (unguessable)."""
    from app.core.outputs import ensure_dir, new_folder

    return new_folder(ensure_dir(served_root(outputs_dir)), secrets.token_hex(16))


_ABS_PATH = re.compile(r"(?<![\w.~-])/(?:[^\s'\"/`]+/)+([^\s'\"/`]*)")


def public_message(text: str, known: dict[str, str] | None = None) -> str:
    """`text` without server paths: each `known` path (absolute or as given) becomes its word, then any other
    absolute path becomes its last component (e.g. an upload's own file name)."""
    for path, word in sorted((known or {}).items(), key=lambda kv: -len(kv[0])):
        if path and path not in (".", "/"):
            text = text.replace(path, word)
    return _ABS_PATH.sub(lambda m: m.group(1) or "(a folder)", text)


# --- models --------------------------------------------------------------------------------------------------------
def find_models(models_dir: str | Path, domain: str) -> list[str]:
    """Names of the model folders of `domain` ("names" or "music") directly under models_dir, sorted."""
    root = Path(models_dir)
    found = []
    if not root.is_dir():
        return found
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or not p.is_dir() or not (p / "weights.npz").is_file():
            continue
        try:
            config = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("domain") == domain:
            found.append(p.name)
    return found


def resolve_model(models_dir: str | Path, name: str | None, domain: str) -> Path:
    """A listed model name -> its folder; anything else (a path, a missing model) is a ModelFolderError."""
    available = find_models(models_dir, domain)
    if not name:
        raise ModelFolderError(f"no {domain} model chosen" + (f"; pick one of {', '.join(available)}" if available
                                                              else " and none is installed on this server"))
    if name not in available:
        raise ModelFolderError(f"{domain} model {str(name)[:60]!r} is not available on this server"
                               + (f"; pick one of {', '.join(available)}" if available else ""))
    return Path(models_dir) / name


# --- names ---------------------------------------------------------------------------------------------------------
_gen_cache: dict[tuple[str, float], object] = {}
_gen_lock = threading.Lock()


def load_names_model(path: Path):
    """NameGenerator for a folder, cached while its weights file is unchanged (generation is read-only)."""
    from app.names.generator import NameGenerator

    key = (str(path.resolve()), (path / "weights.npz").stat().st_mtime)
    with _gen_lock:
        gen = _gen_cache.get(key)
        if gen is None:
            for k in [k for k in _gen_cache if k[0] == key[0]]:
                del _gen_cache[k]
            gen = _gen_cache[key] = NameGenerator.load(path)
    return gen


@dataclass
class NamesResult:
    names: list[str]
    new: list[bool]  # not in the model's training names
    report: dict
    txt: Path | None


def generate_names(models_dir: str | Path, model: str, n: int = 10, temperature: float = 1.0, prefix: str = "",
                   suffix: str = "", novel_only: bool = False, seed: int | None = None,
                   out_dir: str | Path | None = None) -> NamesResult:
    """Names from a listed model; writes them to a new .txt in out_dir (if given) as `names generate` does."""
    from app.names.generator import make_options, write_names

    n = _whole("count", n, 1, MAX_NAMES)
    seed = _seed(seed)
    opts = make_options(n=n, temperature=float(temperature), prefix=(prefix or "").strip(),
                        suffix=(suffix or "").strip(), novel_only=bool(novel_only), seed=seed)
    gen = load_names_model(resolve_model(models_dir, model, "names"))
    result = gen.run(opts)
    train = set(gen.train_names)
    txt = None
    if out_dir is not None:
        txt = write_names(result.names, out_dir)  # atomic name reservation (app.core.outputs.write_new)
    return NamesResult(result.names, [name not in train for name in result.names], result.report, txt)


def names_html(res: NamesResult) -> str:
    r = res.report
    items = "".join(f'<li><span class="name">{html.escape(name)}</span>'
                    + (' <span class="new-badge" title="not in the training data">new</span>' if new else "")
                    + "</li>" for name, new in zip(res.names, res.new))
    return (f'<p class="names-summary">{r["samples"]} names: {r["new"]} new, {r["in_train"]} from the training '
            f'data, {r["unique"]} unique</p><ol class="names-list">{items}</ol>')


# --- music ---------------------------------------------------------------------------------------------------------
def generate_music(models_dir: str | Path, model: str, count: int = 1, bars: int = 8, temperature: float = 1.0,
                   key: str | None = None, qpm: float = 120.0, program: int = 0, seed: int | None = None,
                   primer: str | Path | None = None, out_root: str | Path = "outputs/web/files",
                   limits: UploadLimits = UploadLimits(), synth: str = "auto",
                   work_dir: str | Path | None = None, primer_abc: str | None = None,
                   metre: str | None = None) -> list[dict]:
    """Melodies from a listed model, each with .mid, .wav, .png, the score as .abc and .musicxml, and the engraved
    .svg (when verovio is installed), in a fresh folder under out_root named by 128 random bits. A primer (an
    uploaded .mid/.abc/.musicxml/.krn file, or ABC text in primer_abc) is read in a bounded child process
    (app.web.primer) into a clean MIDI file in work_dir (default: beside out_root in "work"), removed afterwards;
    the melodies then take the primer's time signature. metre: "6/8" etc. (None or MODEL_METRE: the primer's, else
    the model's most common); lookback and attention models take it as an input, so they write that metre."""
    from app.core.outputs import ensure_dir, new_folder
    from app.music.generate import MelodyGenerator, write_melodies

    count = _whole("number of melodies", count, 1, MAX_MELODIES)
    bars = _whole("bars", bars, 1, MAX_WEB_BARS)
    seed = _seed(seed)
    key = None if key in (None, "", "any") else str(key).strip()
    metre = None if metre in (None, "", MODEL_METRE) else str(metre).strip()
    if metre is not None:
        from app.music.archs.features import parse_time_signature

        parse_time_signature(metre)  # a clear error before any work
    path = resolve_model(models_dir, model, "music")
    clean = pasted = None
    primer_abc = (primer_abc or "").strip() or None
    if primer and primer_abc:
        raise OptionError("give one primer: upload a file or paste an ABC tune, not both")
    if primer or primer_abc:
        from app.web.primer import clean_primer, write_abc_primer

        work = ensure_dir(Path(work_dir) if work_dir is not None else Path(out_root).parent / "work")
        clean = work / f"{secrets.token_hex(16)}.mid"
        if primer_abc:
            pasted = write_abc_primer(primer_abc, work / f"{secrets.token_hex(16)}.abc")
        try:
            clean_primer(pasted or primer, path, clean, "the pasted ABC" if pasted else Path(primer).name, limits)
        finally:
            if pasted is not None and pasted.exists():
                pasted.unlink()
    try:
        out_dir = new_folder(ensure_dir(out_root), secrets.token_hex(16))
        gen = MelodyGenerator.load(path)
        melodies = gen.generate(n=count, bars=bars, temperature=float(temperature), seed=seed, key=key,
                                qpm=float(qpm), program=int(program), primer_file=clean, time_signature=metre)
        from app.music.engrave import available

        scores = ("abc", "musicxml") + (("svg",) if available() else ())
        return write_melodies(melodies, out_dir, synth=synth, title=gen.path.name, scores=scores)
    finally:
        if clean is not None and clean.exists():
            clean.unlink()


def score_html(svg_path: str | None) -> str:
    """The engraved score for the page: verovio's SVG (our own output, inline), or a line saying why there is
    none."""
    if not svg_path:
        return ('<p class="score-missing">No engraved score: the verovio package is not installed on this server '
                '(the .abc and .musicxml downloads are there).</p>')
    return f'<div class="score">{Path(svg_path).read_text(encoding="utf-8")}</div>'


def _seed(value) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _whole("seed", value.strip() if isinstance(value, str) else value, 0, 2 ** 32 - 1)


def _whole(what: str, value, lo: int, hi: int) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{what} must be a whole number {lo}..{hi}, got {value!r}") from None
    if not v.is_integer() or not lo <= v <= hi:
        raise OptionError(f"{what} must be a whole number {lo}..{hi}, got {value!r}")
    return int(v)


# --- retraining ----------------------------------------------------------------------------------------------------
def job_markdown(job: dict | None) -> str:
    """Progress of a training job for the page: state, stage, epoch table (loss, validation loss)."""
    if job is None:
        return "No training job yet."
    head = {"queued": "Waiting", "running": "Training", "done": "Done", "failed": "Failed"}[job["state"]]
    lines = [f"**{head}: `{job['name']}`** "
             + (f"(fine-tuning `{Path(job['base']).name}`)" if job["base"] else f"(new model, {job['units']} units)")
             + f", {job['epochs']} epoch(s), {len(job['files'])} file(s)"]
    if job["state"] == "queued":
        ahead = job.get("position", 0)
        if ahead:
            lines.append(f"One training job runs at a time: {ahead} job(s) before yours (now running: "
                         f"`{job.get('running_name')}`). Yours waits in line and starts by itself; keep this page "
                         f"open to watch it.")
        else:
            lines.append("Starting ...")
    elif job["state"] == "running":
        lines.append(f"{job['stage']} ({job['elapsed']:.0f} s)")
    elif job["state"] == "done":
        r = job["result"] or {}
        v = r.get("validation") or {}
        lines.append(f"Model `{job['name']}` saved after {r.get('epochs_done')} epoch(s) (best {r.get('best_epoch')}) "
                     f"in {job['elapsed']:.0f} s" + (f"; validation {v['nll_nats_per_step']:.3f} nats/step, "
                                                     f"accuracy {v['accuracy']:.3f}" if v else "")
                     + ". It is now in the Music tab's model list.")
    else:
        lines.append(f"Error: {public_message(job['message'])}")
    if job["history"]:
        lines.append("| epoch | loss | validation loss |\n|---:|---:|---:|\n" + "\n".join(
            f"| {h['epoch']} | {h['loss']:.4f} | {h['val_loss']:.4f} |" for h in job["history"]))
    return "\n\n".join(lines)


def corpus_text(job: dict | None) -> str:
    """The corpus report (kept, skipped with reasons) and files left out of the upload."""
    if job is None:
        return ""
    parts = []
    if job["upload_skipped"]:
        parts.append("left out of the upload:\n" + "\n".join(f"  {n}: {r}" for n, r in job["upload_skipped"]))
    c = job.get("corpus")
    if c:
        parts.append(public_message(c["summary"]))
    elif job["state"] in ("queued", "running"):
        parts.append(f"{len(job['files'])} MIDI file(s) received: {', '.join(job['files'][:20])}"
                     + (" ..." if len(job["files"]) > 20 else ""))
    return "\n\n".join(parts)


# --- the page ------------------------------------------------------------------------------------------------------
CSS = """
.names-list { columns: 3 12em; font-size: 1.05em; }
.new-badge { background: #dcfce7; color: #166534; border-radius: 4px; padding: 0 4px; font-size: 0.8em; }
.status-error { color: #b91c1c; font-weight: 600; }
.score { background: white; border-radius: 6px; padding: 4px; }
.score svg { width: 100%; height: auto; }
"""


def _error_md(exc: BaseException) -> str:
    return f'<span class="status-error">Error: {html.escape(str(exc))}</span>'


def _unexpected(exc: BaseException, what: str) -> str:
    log.exception("unexpected error in %s", what)
    return _error_md(RuntimeError(f"{what} failed unexpectedly ({type(exc).__name__}); the server log has the "
                                  f"details"))


def _run_safely(what: str, fn, known: dict[str, str] | None = None):
    """(result, None) or (None, status markdown for the page); messages pass through public_message(known)."""
    try:
        return fn(), None
    except AppError as exc:
        return None, _error_md(AppError(public_message(str(exc), known)))
    except Exception as exc:  # noqa: BLE001 - the page shows one line, the server log the traceback
        return None, _unexpected(exc, what)


def build_app(config: WebConfig | None = None, queue=None):
    """The Gradio Blocks of the page. `queue`: a TrainingQueue (default: one on config's folders)."""
    import gradio as gr

    from app.core.options import ui_range
    from app.core.sampling import SamplingOptions
    from app.web.jobs import DEFAULT_UNITS, NEW_MODEL_UNITS, TrainingQueue

    cfg = config or WebConfig()
    models_dir, out = Path(cfg.models_dir), Path(cfg.outputs_dir)
    jobs = queue or TrainingQueue(models_dir, out / "jobs", limits=cfg.limits, max_waiting=cfg.max_waiting_jobs)
    known = {str(p): word for d, word in ((models_dir, "the models folder"), (out, "the outputs folder"))
             for p in (d, d.resolve())}
    names_models = find_models(models_dir, "names")
    music_models = find_models(models_dir, "music")

    def _default(choices, preferred):
        return preferred if preferred in choices else (choices[0] if choices else None)

    with gr.Blocks(title="LSTM music and names") as demo:
        gr.Markdown("## Music and names from LSTMs\nGenerate names or melodies with the trained models, or "
                    "retrain a melody model on your own MIDI files. Everything runs on this computer.")
        with gr.Tabs():
            # --- Names ---------------------------------------------------------------------------------------
            with gr.Tab("Names", id="names"):
                with gr.Row():
                    with gr.Column(scale=1):
                        n_model = gr.Dropdown(names_models, value=_default(names_models, "dinos"), label="Model",
                                              allow_custom_value=True,
                                              elem_id="names-model")
                        n_count = gr.Slider(1, MAX_NAMES, value=12, step=1, label="How many", elem_id="names-count")
                        t_lo, t_hi, t_step = ui_range(SamplingOptions, "temperature")
                        n_temp = gr.Slider(t_lo, t_hi, value=1.0, step=t_step, label="Temperature",
                                           info="lower is safer, higher is wilder")
                        with gr.Row():
                            n_prefix = gr.Textbox(label="Starts with", max_length=30, elem_id="names-prefix")
                            n_suffix = gr.Textbox(label="Ends with", max_length=30, elem_id="names-suffix")
                        n_novel = gr.Checkbox(label="Only new names (not in the training data)")
                        n_seed = gr.Textbox(label="Seed (optional: same seed, same names)", placeholder="random",
                                            max_length=12, elem_id="names-seed")
                        n_go = gr.Button("Generate names", variant="primary", elem_id="names-generate")
                    with gr.Column(scale=2):
                        n_status = gr.Markdown(elem_id="names-status")
                        n_out = gr.HTML(elem_id="names-output")
                        n_file = gr.File(label="Download (.txt)", interactive=False, elem_id="names-file")
                if not names_models:
                    gr.Markdown("No names model is installed on this server; train one with "
                                "`python -m app names train --out models/mynames`.")

            # --- Music ---------------------------------------------------------------------------------------
            with gr.Tab("Music", id="music") as music_tab:
                with gr.Row():
                    with gr.Column(scale=1):
                        m_model = gr.Dropdown(music_models, value=_default(music_models, "folk"), label="Model",
                                              allow_custom_value=True,
                                              elem_id="music-model")
                        m_count = gr.Slider(1, MAX_MELODIES, value=1, step=1, label="How many melodies",
                                            elem_id="music-count")
                        m_bars = gr.Slider(1, MAX_WEB_BARS, value=8, step=1, label="Bars", elem_id="music-bars")
                        m_temp = gr.Slider(t_lo, t_hi, value=1.0, step=t_step, label="Temperature")
                        m_key = gr.Dropdown(list(KEYS), value="any", allow_custom_value=True, label="Key",
                                            info="note-ons stay in this key/scale (e.g. 'F# minor', 'E dorian')")
                        m_qpm = gr.Slider(40, 240, value=120, step=1, label="Tempo (quarter notes per minute)")
                        m_metre = gr.Dropdown([MODEL_METRE, *WEB_METRES], value=MODEL_METRE, label="Metre",
                                              elem_id="music-metre",
                                              info="lookback and attention models write any metre; a primer "
                                                   "brings its own")
                        m_prog = gr.Dropdown(list(INSTRUMENTS), value=0, label="Instrument",
                                             info="written into the MIDI file; the WAV uses it when FluidSynth "
                                                  "is installed")
                        m_seed = gr.Textbox(label="Seed (optional: same seed, same melodies)", placeholder="random",
                                            max_length=12, elem_id="music-seed")
                        m_primer = gr.File(label="Primer (optional): a .mid, .abc or .musicxml file the melody "
                                                 "continues", file_count="single", type="filepath",
                                           elem_id="music-primer")
                        m_primer_abc = gr.Textbox(label="... or paste a primer tune in ABC (optional)", lines=4,
                                                  max_length=PRIMER_ABC_CHARS, elem_id="music-primer-abc",
                                                  placeholder="X:1\nM:6/8\nK:G\nD|GAB c2e|dBG A2D|")
                        m_go = gr.Button("Generate music", variant="primary", elem_id="music-generate")
                    with gr.Column(scale=2):
                        m_status = gr.Markdown(elem_id="music-status")
                        slots = []
                        for k in range(MAX_MELODIES):
                            with gr.Column(visible=False, elem_id=f"music-out-{k}") as col:
                                title = gr.Markdown()
                                audio = gr.Audio(type="filepath", interactive=False, label=f"Melody {k + 1}",
                                                 buttons=["download"],
                                                 elem_id=f"music-audio-{k}")
                                image = gr.Image(type="filepath", interactive=False, label="Piano roll",
                                                 buttons=["download", "fullscreen"],
                                                 elem_id=f"music-image-{k}")
                                score = gr.HTML(elem_id=f"music-score-{k}")
                                mid = gr.File(label="Download (.mid)", interactive=False, elem_id=f"music-mid-{k}")
                                sheet = gr.File(label="Download the score (.abc, .musicxml)", interactive=False,
                                                file_count="multiple", elem_id=f"music-sheet-{k}")
                            slots.append((col, title, audio, image, score, mid, sheet))
                if not music_models:
                    gr.Markdown("No music model is installed on this server; train one with "
                                "`python -m app music train --out models/mytunes` or on the Retrain tab.")

            # --- Retrain -------------------------------------------------------------------------------------
            with gr.Tab("Retrain", id="retrain"):
                with gr.Row():
                    with gr.Column(scale=1):
                        r_files = gr.File(label="MIDI files or a .zip of them", file_count="multiple",
                                          type="filepath", elem_id="retrain-files")
                        gr.Markdown(f"Accepted: {cfg.limits.describe()}.", elem_id="retrain-limits")
                        r_name = gr.Textbox(label="Name of the new model", placeholder="my-tunes", max_length=60,
                                            elem_id="retrain-name")
                        base_choices = [NEW_MODEL] + music_models
                        r_base = gr.Dropdown(base_choices, value=_default(music_models, "folk") or NEW_MODEL,
                                             label="Start from", elem_id="retrain-base", allow_custom_value=True,
                                             info="fine-tune an existing model, or train a new one")
                        r_size = gr.Radio(list(NEW_MODEL_UNITS.items()), value=DEFAULT_UNITS,
                                          label="Size of a new model", elem_id="retrain-size")
                        r_mode = gr.Radio([("melody (one line per file)", "melody"),
                                           ("polyphonic (every track, chords kept)", "poly")], value="melody",
                                          label="Mode of a new model", elem_id="retrain-mode",
                                          info="a fine-tuned model keeps the mode of the model it starts from")
                        r_epochs = gr.Slider(1, 50, value=5, step=1, label="Epochs", elem_id="retrain-epochs")
                        r_go = gr.Button("Train", variant="primary", elem_id="retrain-train")
                    with gr.Column(scale=2):
                        r_status = gr.Markdown("No training job yet.", elem_id="retrain-status")
                        r_report = gr.Textbox(label="Corpus report (kept / skipped and why)", lines=10,
                                              interactive=False, elem_id="retrain-report")
                job_id = gr.State(None)
                timer = gr.Timer(1.0, active=False)

        # --- handlers ----------------------------------------------------------------------------------------
        def on_names(model, n, temp, prefix, suffix, novel, seed):
            res, err = _run_safely("name generation", lambda: generate_names(
                models_dir, model, n, temp, prefix, suffix, novel, seed, response_folder(out)), known)
            if err:
                return err, "", None
            return "", names_html(res), str(res.txt)

        n_go.click(on_names, [n_model, n_count, n_temp, n_prefix, n_suffix, n_novel, n_seed],
                   [n_status, n_out, n_file], api_name="names", concurrency_limit=4, concurrency_id="names")

        def on_music(model, count, bars, temp, key, qpm, program, seed, primer, primer_abc, metre):
            primer_known = {str(primer): Path(str(primer)).name} if primer else {}
            res, err = _run_safely("music generation", lambda: generate_music(
                models_dir, model, count, bars, temp, key, qpm, program, seed, primer, served_root(out), cfg.limits,
                cfg.synth, out / "work", primer_abc, metre), {**known, **primer_known})
            updates = [err or ""]
            for k in range(MAX_MELODIES):
                r = res[k] if res and k < len(res) else None
                if r is None:
                    updates += [gr.Column(visible=False), "", None, None, "", None, None]
                else:
                    updates += [gr.Column(visible=True),
                                f"**Melody {k + 1}**: {r['notes']} notes, {r['steps']} steps"
                                + (f" ({r['primer_steps']} from the primer)" if r["primer_steps"] else "")
                                + f", WAV by {r.get('synth', '?')}",
                                r.get("wav"), r.get("png"), score_html(r.get("svg")), r["mid"],
                                [r[f] for f in ("abc", "musicxml") if f in r]]
            return updates

        m_go.click(on_music, [m_model, m_count, m_bars, m_temp, m_key, m_qpm, m_prog, m_seed, m_primer,
                              m_primer_abc, m_metre],
                   [m_status] + [c for slot in slots for c in slot], api_name="music", concurrency_limit=2,
                   concurrency_id="music")

        def model_lists(current_music, current_base):
            music = find_models(models_dir, "music")
            return (gr.Dropdown(choices=music, value=current_music if current_music in music else
                                _default(music, "folk")),
                    gr.Dropdown(choices=[NEW_MODEL] + music,
                                value=current_base if current_base in [NEW_MODEL] + music else NEW_MODEL))

        music_tab.select(model_lists, [m_model, r_base], [m_model, r_base], api_name=False, queue=False)

        def all_lists(current_names, current_music, current_base):
            names = find_models(models_dir, "names")
            return (gr.Dropdown(choices=names, value=current_names if current_names in names else
                                _default(names, "dinos")), *model_lists(current_music, current_base))

        # the lists are read again when a page opens, so models trained since the server started appear
        demo.load(all_lists, [n_model, m_model, r_base], [n_model, m_model, r_base], api_name=False, queue=False)

        def on_train(files, name, base, size, epochs, mode="melody"):
            def submit():
                base_path = None if base in (None, "", NEW_MODEL) else resolve_model(models_dir, base, "music")
                paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
                return jobs.submit(paths, name, base_path, epochs, size,
                                   display_names=[Path(p).name for p in paths], mode=mode or "melody")

            job, err = _run_safely("retraining", submit, known)
            if err:
                return err, "", None, gr.Timer(active=False)
            snap = jobs.get(job.id)
            return job_markdown(snap), corpus_text(snap), job.id, gr.Timer(active=True)

        r_go.click(on_train, [r_files, r_name, r_base, r_size, r_epochs, r_mode], [r_status, r_report, job_id, timer],
                   api_name="train", concurrency_limit=1, concurrency_id="train")

        def on_tick(jid, current_music, current_base):
            snap = jobs.get(jid)
            if snap is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
            finished = snap["state"] in ("done", "failed")
            lists = model_lists(current_music, current_base) if snap["state"] == "done" else (gr.skip(), gr.skip())
            return (job_markdown(snap), corpus_text(snap), *lists, gr.Timer(active=not finished))

        timer.tick(on_tick, [job_id, m_model, r_base], [r_status, r_report, m_model, r_base, timer],
                   api_name=False, queue=False)

    demo.training_queue = jobs  # for the CLI's shutdown and for tests
    return demo


def theme():
    """Gradio's default look with system fonts only (the default theme would fetch Google Fonts)."""
    import gradio as gr

    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "Consolas", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


__all__ = ["WebConfig", "build_app", "served_root", "response_folder", "public_message", "find_models", "resolve_model", "generate_names", "generate_music",
           "names_html", "job_markdown", "corpus_text", "theme", "CSS"]
