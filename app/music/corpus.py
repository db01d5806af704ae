"""Melody corpus: build (sources -> encoded pieces, cached, with a report) and load (for training).

Folder layout of a corpus `OUT` (e.g. data/corpora/default):
    corpus.npz     the encoded corpus (all arrays + JSON metadata)
    report.json    what was read, kept and skipped and why, token counts, vocabulary usage, split sizes, hashes
    vocab.json     the melody vocabulary (app.core.vocab.Vocabulary, kind "melody")
    cache/files/   one JSON per source file: its extraction result, keyed by a hash of the file's bytes, the
                   extraction config and BUILD_VERSION

Writing: corpus.npz, report.json and vocab.json are written into a new hidden sibling folder `.OUT.tmp-PID-*`, the
file cache is moved into it, and it is swapped with OUT in one step (app.core.outputs.replace_folder), so a reader
always sees the three files of one build together; a crash leaves OUT as it was and the next build removes the
leftovers. OUT may hold only these entries: a folder with anything else is refused before any work.

Caching: a build first hashes every source file. If `corpus.npz` was built from exactly these contents with the
same options it is reused untouched (the "cached" build: no parsing at all). Otherwise files whose per-file cache
entry exists are not parsed again; the rest are parsed in a process pool (`jobs` processes).

Split: train/validation by *tune family*, never by segment. A family is the set of pieces (ABC tunes, MIDI files,
scores) linked by sharing a run of FAMILY_RUN consecutive melodic intervals (transposition-invariant): the same tune
printed in two collections, or two settings of it, must not sit on both sides, or validation would score the model
on tunes it was trained on. Families are ordered by their first piece name, shuffled with numpy's
default_rng(seed), and taken for validation until round(n * val_fraction) pieces are reached (at least 1 piece
when there are >= 2 families and val_fraction > 0).
Augmented copies (ExtractConfig.augment) are made for training pieces only.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.config import check_range, from_dict, to_dict
from app.core.outputs import atomic_write, ensure_dir, file_mode, replace_folder, temp_sibling
from app.core.vocab import Vocabulary
from app.errors import DataError, ModelFolderError
from app.music.codec import MelodyCodec, window_ids
from app.music.limits import DEFAULT_LIMITS, ReadLimits
from app.music.melody import ExtractConfig, extract_melodies
from app.music.metre import bar_grid, metre_label
from app.music.sources import DEFAULT_SOURCES, SourceFile, Skip, find_files, printable, read_file

BUILD_VERSION = "melody-corpus-4"  # bump when reading/extraction/encoding changes: invalidates every cache
FILE_VERSION = "notes-kept-2"  # in the file cache keys: per-file results that also count the notes kept
SPLIT_VERSION = "families-24"  # in the build key: a new split rule re-splits without re-parsing any file
FAMILY_RUN = 24  # shared consecutive intervals that make two pieces one tune family (measured: families of <= 5)
CORPUS_FILE = "corpus.npz"
DEFAULT_OUT = "data/corpora/default"
CORPUS_ENTRIES = (CORPUS_FILE, "report.json", "vocab.json", "cache")  # all a corpus folder may hold


def check_corpus_destination(out: str | Path) -> Path:
    """Check, before any work, that a corpus may be written at `out`: a new name, an empty folder or a corpus
    folder (only CORPUS_ENTRIES). Leftovers of a crashed build beside it are cleaned first."""
    from app.core.outputs import folder_destination
    from app.errors import OptionError

    p, entries = folder_destination(out, "--out", "corpus folder", "data/corpora/mytunes")
    other = [n for n in entries or () if n not in CORPUS_ENTRIES]
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise OptionError(f"--out {str(p)!r} holds files that are not part of a corpus ({shown}); a build replaces "
                          f"the whole folder, so choose a new folder name or an empty folder")
    return p


# --- per-file work (runs in worker processes) ----------------------------------------------------------------------
def extract_file(path: str, label: str, config: dict, tunes: tuple[int, int] | None = None,
                 limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """Read and extract one source file -> JSON-able result. Never raises: every failure becomes a skip entry.
    `limits` bounds the work per file (app.music.limits), including the tokens kept from it.

    Result keys: pieces_read, pieces (name, qpm, time_signature, transposed_by, segments: list of id lists,
    metres: per segment its metre changes [[step, num, den], ...] (app/music/metre.py), repeats: "", "none",
    "expanded" or "not expanded" with repeats_detail, written_tokens: the piece's tokens in written order),
    skipped (list of Skip JSON), out_of_range (notes clamped/dropped), short_segments (segments dropped).
    """
    out: dict = {"pieces_read": 0, "pieces": [], "skipped": [], "out_of_range": 0, "short_segments": 0,
                 "notes": []}
    try:
        cfg = ExtractConfig(**config)
        codec = corpus_codec(cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21/pretty_midi warn on odd but usable input
            pieces, skips = read_file(SourceFile(path, label), tunes, limits)
        out["skipped"] = [s.to_json() for s in skips]
        out["pieces_read"] = len(pieces) + len(skips)  # each skip from read_file is one file or tune that failed
        tokens = 0
        for piece in pieces:
            kept = piece_notes(piece, cfg.drums if cfg.mode == "poly" else False)
            out["notes"].append(kept)
            if cfg.mode == "poly":
                tokens = _poly_piece(piece, cfg, codec, limits, out, kept, tokens)
                continue
            try:
                res = extract_melodies(piece, cfg, limits)
            except Exception as exc:  # a piece we cannot interpret must not stop the file's other pieces
                out["skipped"].append(Skip(piece.name, "unreadable", f"{type(exc).__name__}: {exc}"[:200]).to_json())
                continue
            out["out_of_range"] += res.out_of_range
            out["short_segments"] += res.short_segments
            if res.track is not None:
                t = piece.tracks[res.track]
                kept["track"] = {"index": res.track, "name": printable(t.name), "program": int(t.program)}
            if res.skip:
                out["skipped"].append(Skip(piece.name, res.skip, res.detail).to_json())
                continue
            steps = sum(m.steps for m in res.melodies)
            if tokens + steps > limits.max_tokens_per_file:
                out["skipped"].append(Skip(piece.name, "too many tokens", (
                    f"the file's pieces so far plus this one make {tokens + steps:,} tokens; the limit per file "
                    f"is {limits.max_tokens_per_file:,} (ReadLimits.max_tokens_per_file)")).to_json())
                continue
            tokens += steps
            kept["kept"] = sum(len(m.notes()) for m in res.melodies)
            segments = [codec.encode(m).tolist() for m in res.melodies]
            written_tokens = sum(len(s) for s in segments)
            if piece.written is not None:  # expanded repeats: what the written order would have given
                try:
                    written_tokens = sum(m.steps for m in extract_melodies(piece.written, cfg, limits).melodies)
                except Exception:
                    pass
            out["pieces"].append({"name": piece.name, "qpm": round(float(piece.qpm), 3),
                                  "time_signature": list(piece.time_signature),
                                  "transposed_by": res.transposed_by,
                                  "segments": segments,
                                  "metres": [[list(c) for c in m.metre_changes()] for m in res.melodies],
                                  "repeats": piece.repeats, "repeats_detail": piece.repeats_detail,
                                  "written_tokens": written_tokens})
    except Exception as exc:
        out["skipped"].append(Skip(label, "unreadable", f"{type(exc).__name__}: {exc}"[:200]).to_json())
    return out


def corpus_codec(config: ExtractConfig):
    """The token codec of a corpus mode: MelodyCodec (melody) or PolyCodec (poly), over the config's pitch range."""
    if config.mode == "poly":
        from app.music.polycodec import PolyCodec

        return PolyCodec(config.min_pitch, config.max_pitch)
    return MelodyCodec(config.min_pitch, config.max_pitch)


def codec_from_vocab(vocab: Vocabulary):
    """The codec of a saved vocabulary, by its kind ("melody" or "poly")."""
    if vocab.kind == "poly":
        from app.music.polycodec import PolyCodec

        return PolyCodec.from_vocab(vocab)
    return MelodyCodec.from_vocab(vocab)


def _poly_piece(piece, cfg: ExtractConfig, codec, limits: ReadLimits, out: dict, kept: dict, tokens: int) -> int:
    """Poly mode, one piece (app.music.polyextract): append its result or skip to `out`; returns the file's tokens
    so far (the per-file token limit counts poly tokens)."""
    from app.music.polycodec import family_line
    from app.music.polyextract import extract_poly

    try:
        res = extract_poly(piece, cfg, limits)
    except Exception as exc:  # a piece we cannot interpret must not stop the file's other pieces
        out["skipped"].append(Skip(piece.name, "unreadable", f"{type(exc).__name__}: {exc}"[:200]).to_json())
        return tokens
    out["out_of_range"] += res.out_of_range
    out["short_segments"] += res.short_segments
    if res.skip:
        out["skipped"].append(Skip(piece.name, res.skip, res.detail).to_json())
        return tokens
    n_tokens = sum(steps + sum(e - s for _, s, e in notes) for notes, steps in res.segments)
    if tokens + n_tokens > limits.max_tokens_per_file:
        out["skipped"].append(Skip(piece.name, "too many tokens", (
            f"the file's pieces so far plus this one make {tokens + n_tokens:,} tokens; the limit per file "
            f"is {limits.max_tokens_per_file:,} (ReadLimits.max_tokens_per_file)")).to_json())
        return tokens
    segments = [codec.encode(notes, steps).tolist() for notes, steps in res.segments]
    kept["kept"] = res.kept_notes
    kept["unisons"] = res.unisons
    out["pieces"].append({"name": piece.name, "qpm": round(float(piece.qpm), 3),
                          "time_signature": list(piece.time_signature), "transposed_by": res.transposed_by,
                          "segments": segments, "metres": [[list(c) for c in m] for m in res.metres],
                          "lines": [family_line(notes).tolist() for notes, _ in res.segments],
                          "repeats": piece.repeats, "repeats_detail": piece.repeats_detail,
                          "written_tokens": sum(len(x) for x in segments)})
    return tokens + n_tokens


def piece_notes(piece, drums: bool = False) -> dict:
    """What a piece holds before extraction, for the kept-notes report: its name, pitched notes (all non-drum
    tracks; with `drums`, drum tracks count as pitched, as poly --drums keeps them), drum notes, its number of
    tracks with notes; `kept` (notes in the kept tokens) and `track` (the chosen track: index, name, program;
    melody mode) are filled in by the extraction."""
    return {"piece": piece.name, "pitched": sum(len(t.notes) for t in piece.tracks if drums or not t.is_drum),
            "drums": sum(len(t.notes) for t in piece.tracks if t.is_drum),
            "tracks": sum(1 for t in piece.tracks if t.notes), "kept": 0, "track": None}


def notes_report(files, results, mode: str = "melody") -> dict:
    """Notes in the source files against notes kept in the corpus (issue 14): totals, and one item per file that
    lost notes or had several tracks to choose from (a file with one track whose notes were all kept is only
    counted, so the default corpus's report stays small). Shares are kept / pitched notes."""
    items, pitched, drums, kept, whole = [], 0, 0, 0, 0
    for f, res in zip(files, results):
        entries = (res or {}).get("notes", [])
        if not entries:
            continue
        n = sum(e["pitched"] for e in entries)
        k = sum(e["kept"] for e in entries)
        pitched, drums, kept = pitched + n, drums + sum(e["drums"] for e in entries), kept + k
        n_tracks = max(e["tracks"] for e in entries)
        if k >= n and n_tracks <= 1:
            whole += 1
            continue
        chosen = [e["track"] for e in entries if e["track"] is not None]
        item = {"source": f.label, "pieces": len(entries), "tracks": n_tracks, "notes": n, "kept": k,
                "share": round(k / n, 4) if n else 0.0}
        if mode == "melody":
            item["track"] = chosen[0] if chosen and all(c == chosen[0] for c in chosen) else (
                "various" if chosen else None)
        items.append(item)
    shares = [i["share"] for i in items]
    unisons = sum(e.get("unisons", 0) for res in results for e in (res or {}).get("notes", []))
    return {"mode": mode, "pitched": pitched, "drums": drums, "kept": kept, "unisons_merged": unisons,
            "share": round(kept / pitched, 4) if pitched else 0.0,
            "files_whole": whole, "files_listed": len(items),
            "lowest_share": min(shares) if shares else 1.0, "items": items}


def _extract_chunk(items: list[tuple[str, str, tuple[int, int] | None]], config: dict) -> list[dict]:
    return [extract_file(path, label, config, tunes) for path, label, tunes in items]


def _merge(parts: list[dict], limits: ReadLimits = DEFAULT_LIMITS) -> dict:
    """Results of consecutive parts of one file (in order) -> the file's result, with the per-file token limit
    applied to the whole file (each part was only bounded on its own)."""
    out: dict = {"pieces_read": 0, "pieces": [], "skipped": [], "out_of_range": 0, "short_segments": 0,
                 "notes": []}
    tokens = 0
    for r in parts:
        for k in ("pieces_read", "out_of_range", "short_segments"):
            out[k] += r[k]
        out["skipped"].extend(r["skipped"])
        out["notes"].extend(r.get("notes", []))
        for piece in r["pieces"]:
            steps = sum(len(seg) for seg in piece["segments"])
            if tokens + steps > limits.max_tokens_per_file:
                out["skipped"].append(Skip(piece["name"], "too many tokens", (
                    f"the file's pieces so far plus this one make {tokens + steps:,} tokens; the limit per file "
                    f"is {limits.max_tokens_per_file:,} (ReadLimits.max_tokens_per_file)")).to_json())
                for n in out["notes"]:
                    if n["piece"] == piece["name"]:
                        n["kept"] = 0
                continue
            tokens += steps
            out["pieces"].append(piece)
    return out


# --- hashing -------------------------------------------------------------------------------------------------------
def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        # surrogateescape: a file name that is not UTF-8 (b"Caf\xe9.mid" -> "Caf\udce9.mid") hashes as its bytes
        h.update(p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def _file_digest(path: str, limits: ReadLimits = DEFAULT_LIMITS) -> str:
    """sha256 of a regular file's bytes, streamed. Never blocks on a FIFO or device; a file above the size limit
    (it will be skipped as "too large") is keyed by its size and mtime instead of being read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return f"unreadable:{exc.errno}"  # never cached as a success: the key changes when the file is fixed
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return f"unreadable:not-regular:{st.st_mode}"
        if st.st_size > limits.max_file_bytes:
            return f"unreadable:too-large:{st.st_size}:{st.st_mtime_ns}"
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    finally:
        os.close(fd)


# --- build ---------------------------------------------------------------------------------------------------------
@dataclass
class BuildResult:
    """What `build_corpus` did: the report, where it wrote, whether it reused the previous build, seconds spent."""

    report: dict
    out: Path
    cached: bool
    seconds: float
    parsed_files: int = 0


def tune_families(pieces: Sequence[Sequence[np.ndarray]], run: int = FAMILY_RUN) -> list[int]:
    """Family id per piece: pieces sharing `run` consecutive melodic intervals are one family (union-find).

    pieces: per piece, its segments as token-id arrays (note-on ids are pitch + constant, so differences of
    note-on ids are intervals in semitones; hold and rest tokens are skipped). Returns, for each piece, the index
    of the first piece of its family.
    """
    parent = list(range(len(pieces)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_owner: dict[bytes, int] = {}
    for k, segments in enumerate(pieces):
        for seg in segments:
            notes = np.asarray(seg, np.int64)
            intervals = np.diff(notes[notes >= 2])
            if len(intervals) < run:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(intervals.astype(np.int16), run)
            for key in {w.tobytes() for w in windows}:
                other = first_owner.setdefault(key, k)
                a, b = find(k), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return [find(k) for k in range(len(pieces))]


def _split(names: list[str], families: list[int], val_fraction: float, seed: int) -> set[str]:
    """Names of validation pieces: whole families, shuffled by seed (see module docstring)."""
    members: dict[int, list[str]] = {}
    for name, fam in zip(names, families):
        members.setdefault(fam, []).append(name)
    groups = sorted((sorted(g) for g in members.values()), key=lambda g: g[0])
    if val_fraction <= 0 or len(groups) < 2:
        return set()
    n_val = min(max(1, int(round(len(names) * val_fraction))), len(names) - 1)
    val: set[str] = set()
    for i in np.random.default_rng(seed).permutation(len(groups)):
        if len(val) >= n_val:
            break
        if len(val) + len(groups[i]) >= len(names):
            continue  # never put every piece on the validation side
        val.update(groups[i])
    return val


def _reason_counts(skips: list[dict]) -> dict[str, int]:
    """Skip reasons -> counts, most frequent first, ties alphabetical (stable across builds)."""
    counts = Counter(s["reason"] for s in skips)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _skip_message(skips: list[dict], n_files: int, sources: Sequence[str]) -> str:
    sources = [printable(s) for s in sources]
    listed = ", ".join(f"{reason}: {n}" for reason, n in _reason_counts(skips).items()) or "none"
    first = "; ".join(f"{s['source']}: {s['reason']}" + (f" ({s['detail']})" if s["detail"] else "")
                      for s in skips[:3])
    return (f"no melodies kept from {', '.join(sources)} ({n_files} supported file(s) found); skipped by reason: "
            f"{listed}" + (f"; e.g. {first}" if first else "") +
            "; pass a folder with readable .mid/.abc/.xml files that contain melodies")


def build_corpus(sources: Sequence[str] = DEFAULT_SOURCES, out: str | Path = DEFAULT_OUT,
                 config: ExtractConfig | None = None, *, val_fraction: float = 0.1, seed: int = 0,
                 jobs: int | None = None, progress: bool = True, use_cache: bool = True) -> BuildResult:
    """Build (or reuse) the encoded corpus of `sources` in folder `out`; see the module docstring.

    jobs: worker processes (None = all cores; 1 = no pool). use_cache=False ignores and rewrites every cache.
    Raises DataError when nothing is kept (the message counts the reasons), OptionError for bad options.
    """
    t0 = time.perf_counter()
    config = config or ExtractConfig()
    check_range("val_fraction", val_fraction, 0.0, 0.9)
    jobs = jobs or os.cpu_count() or 1
    check_range("jobs", jobs, 1, 256)
    sources = list(sources)
    out = check_corpus_destination(out)
    files, find_skips = find_files(sources)
    cfg_json = json.dumps(to_dict(config), sort_keys=True)

    digests = [_file_digest(f.path) for f in files]
    file_keys = [_sha(BUILD_VERSION, FILE_VERSION, cfg_json, d) for d in digests]
    source_hash = _sha(BUILD_VERSION, *(f"{f.label}={d}" for f, d in zip(files, digests)),
                       *(f"{s.source}:{s.reason}" for s in find_skips))
    build_key = _sha(source_hash, cfg_json, repr(val_fraction), repr(seed), SPLIT_VERSION, FILE_VERSION)

    corpus_file = out / CORPUS_FILE
    if use_cache and corpus_file.exists():
        try:
            with np.load(corpus_file) as z:
                meta = json.loads(str(z["meta_json"]))
                if meta.get("build_key") == build_key:
                    report = json.loads(str(z["report_json"]))
                    return BuildResult(report, out, True, time.perf_counter() - t0)
        except Exception:
            pass  # a damaged or old-format corpus is simply rebuilt

    cache_dir = out / "cache" / "files"
    results: list[dict | None] = [None] * len(files)
    todo: list[int] = []
    for i, key in enumerate(file_keys):
        entry = cache_dir / f"{key}.json"
        if use_cache and not digests[i].startswith("unreadable:") and entry.exists():
            try:
                results[i] = json.loads(entry.read_text(encoding="utf-8"))
                continue
            except (OSError, json.JSONDecodeError):
                pass
        todo.append(i)

    if todo:
        ensure_dir(cache_dir)
        for i, res in _run(files, todo, to_dict(config), jobs, progress):
            results[i] = res
            if not digests[i].startswith("unreadable:"):
                atomic_write(cache_dir / f"{file_keys[i]}.json", json.dumps(res, separators=(",", ":")))

    report, arrays, meta = _assemble(sources, files, find_skips, results, config, val_fraction, seed)
    report["content_hash"] = {"sources": source_hash, "build": build_key}
    meta["build_key"] = build_key
    if report["pieces"]["kept"] == 0:
        raise DataError(_skip_message(report["skipped"]["items"], len(files), sources))

    vocab = corpus_codec(config).vocab
    _write_version(out, vocab, report, arrays, meta)
    if use_cache:
        _prune(cache_dir, {f"{k}.json" for k in file_keys})
    return BuildResult(report, out, False, time.perf_counter() - t0, parsed_files=len(todo))


TUNES_PER_TASK = 20  # ABC files with hundreds of tunes are shared among workers in parts of this many tunes


def _run(files: list[SourceFile], todo: list[int], config: dict, jobs: int, progress: bool):
    """Yield (index, result) for files[todo], in a process pool when jobs > 1, with a progress bar counting tunes
    (an ABC file holds many; any other file counts as one)."""
    from tqdm import tqdm

    from app.music.sources import count_tunes

    tunes_in = {i: (count_tunes(files[i].path) if files[i].kind == "abc" else 0) for i in todo}
    bar = tqdm(total=sum(max(1, n) for n in tunes_in.values()), unit="tune", desc="reading tunes",
               disable=not progress, file=sys.stderr, leave=False)
    try:
        if jobs == 1 or len(todo) == 1:
            for i in todo:
                yield i, extract_file(files[i].path, files[i].label, config)
                bar.update(max(1, tunes_in[i]))
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # Tasks: (file index, tune range or None, cost estimate). One big ABC file becomes several tasks so two
        # workers are not left waiting on it; costly tasks go first and small ones are grouped into chunks.
        tasks = []
        for i in todo:
            size = _size(files[i].path)
            n = tunes_in[i]
            if n > TUNES_PER_TASK:
                for lo in range(0, n, TUNES_PER_TASK):
                    hi = min(n, lo + TUNES_PER_TASK)
                    tasks.append((i, (lo, hi), size * (hi - lo) / n))
            else:
                tasks.append((i, None, size))
        tasks.sort(key=lambda t: -t[2])
        n_chunks = min(len(tasks), jobs * 16)
        chunks = [tasks[k::n_chunks] for k in range(n_chunks)]
        n_parts = Counter(t[0] for t in tasks)
        parts: dict[int, list] = {i: [] for i in n_parts}
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                          and "tensorflow" not in sys.modules else "spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=ctx) as pool:
            futures = {pool.submit(_extract_chunk, [(files[i].path, files[i].label, tunes)
                                                    for i, tunes, _ in chunk], config): chunk
                       for chunk in chunks}
            for fut in as_completed(futures):
                chunk = futures[fut]
                try:
                    results = fut.result()
                except Exception as exc:  # a worker died (e.g. out of memory): report, keep going
                    results = [{"pieces_read": 0, "pieces": [], "out_of_range": 0, "short_segments": 0,
                                "skipped": [Skip(files[i].label + (f"#tunes {tunes[0] + 1}-{tunes[1]}" if tunes
                                                                   else ""), "unreadable",
                                                 f"worker failed: {type(exc).__name__}").to_json()]}
                               for i, tunes, _ in chunk]
                for (i, tunes, _), res in zip(chunk, results):
                    parts[i].append((tunes[0] if tunes else 0, res))
                    bar.update(tunes[1] - tunes[0] if tunes else max(1, tunes_in[i]))
                    if len(parts[i]) == n_parts[i]:
                        yield i, _merge([r for _, r in sorted(parts.pop(i), key=lambda x: x[0])])
    finally:
        bar.close()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _prune(cache_dir: Path, keep: set[str]) -> None:
    """Remove cache entries this build did not use (old configs, changed or deleted files)."""
    try:
        for entry in os.scandir(cache_dir):
            if entry.name.endswith(".json") and entry.name not in keep:
                os.unlink(entry.path)
    except OSError:
        pass  # pruning is housekeeping; never fail a good build over it


def _assemble(sources, files, find_skips, results, config: ExtractConfig, val_fraction: float, seed: int):
    """Per-file results -> (report, arrays for corpus.npz, meta)."""
    codec = corpus_codec(config)
    skipped = [s.to_json() for s in find_skips]
    pieces = []
    pieces_read = out_of_range = short = 0
    for res in results:
        skipped.extend(res["skipped"])
        pieces.extend(res["pieces"])
        pieces_read += res["pieces_read"]
        out_of_range += res["out_of_range"]
        short += res["short_segments"]
    families = tune_families([p.get("lines", p["segments"]) for p in pieces])
    val_names = _split([p["name"] for p in pieces], families, val_fraction, seed)

    seqs, split, piece_idx, shift, seg_idx = [], [], [], [], []
    for k, p in enumerate(pieces):
        for j, seg in enumerate(p["segments"]):
            ids = np.asarray(seg, dtype=np.int32)
            is_val = p["name"] in val_names
            seqs.append(ids), split.append(int(is_val)), piece_idx.append(k), shift.append(0), seg_idx.append(j)
            if is_val:
                continue
            for semis in range(-config.augment, config.augment + 1):
                moved = codec.transpose_ids(ids, semis) if semis else None
                if moved is not None:
                    seqs.append(moved), split.append(0), piece_idx.append(k), shift.append(semis)
                    seg_idx.append(j)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    arrays = {
        "tokens": np.concatenate(seqs).astype(np.int32) if seqs else np.zeros(0, np.int32),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "split": np.array(split, dtype=np.int8),
        "piece": np.array(piece_idx, dtype=np.int32),
        "shift": np.array(shift, dtype=np.int8),
        "segment": np.array(seg_idx, dtype=np.int32),
    }
    split_arr, shift_arr = arrays["split"], arrays["shift"]
    original = shift_arr == 0
    usage = np.bincount(arrays["tokens"][np.repeat(original, lengths)], minlength=codec.size)
    report = {
        "format": BUILD_VERSION,
        "sources": [printable(s) for s in sources],
        "config": to_dict(config),
        "files": {"supported": len(files), "skipped_before_reading": len(find_skips)},
        "pieces": {"read": pieces_read, "kept": len(pieces),
                   "segments": int(original.sum())},
        "tokens": int(lengths[original].sum()) if len(lengths) else 0,
        "notes_out_of_range": {"count": out_of_range, "action": config.out_of_range},
        "short_segments_dropped": short,
        "split": {"val_fraction": val_fraction, "seed": seed, "rule": SPLIT_VERSION,
                  "families": len(set(families)),
                  "pieces_in_shared_families": sum(n for n in Counter(families).values() if n > 1),
                  "train_pieces": len(pieces) - len(val_names), "val_pieces": len(val_names),
                  "train_segments": int(((split_arr == 0) & original).sum()),
                  "val_segments": int((split_arr == 1).sum()),
                  "augmented_segments": int((~original).sum()),
                  "train_tokens": int(lengths[(split_arr == 0) & original].sum()) if len(lengths) else 0,
                  "val_tokens": int(lengths[split_arr == 1].sum()) if len(lengths) else 0},
        "mode": config.mode,
        "notes_kept": notes_report(files, results, config.mode),
        "repeats": _repeat_report(pieces),
        "metres": _metre_report(pieces),
        "skipped": {"total": len(skipped), "counts": _reason_counts(skipped), "items": skipped},
        "vocabulary": {"size": codec.size, "used": int((usage > 0).sum()),
                       "usage": {tok: int(n) for tok, n in zip(codec.vocab.tokens, usage)},
                       "unused": [t for t, n in zip(codec.vocab.tokens, usage) if n == 0]},
    }
    meta = {"format": BUILD_VERSION, "mode": config.mode, "config": to_dict(config), "vocab": codec.vocab.to_json(),
            "pieces": [{"name": p["name"], "qpm": p["qpm"], "time_signature": p["time_signature"],
                        "transposed_by": p["transposed_by"], "metres": p["metres"]} for p in pieces]}
    return report, arrays, meta


def _repeat_report(pieces: list[dict]) -> dict:
    """Written repeats: pieces that had them, expanded to played order or kept in written order (malformed), and
    the tokens before (written order) and after (played order) expansion over all kept pieces."""
    status = Counter(p.get("repeats", "") for p in pieces)
    kept = [p for p in pieces if p.get("repeats") == "not expanded"]
    return {"pieces_with_repeats": status["expanded"] + status["not expanded"],
            "expanded": status["expanded"], "not_expanded": status["not expanded"],
            "pieces_without_repeats": status["none"], "pieces_in_played_order_already": status[""],
            "tokens_written_order": int(sum(p.get("written_tokens", 0) for p in pieces)),
            "tokens_played_order": int(sum(len(s) for p in pieces for s in p["segments"])),
            "not_expanded_items": [{"source": p["name"], "detail": p.get("repeats_detail", "")} for p in kept]}


def _metre_report(pieces: list[dict]) -> dict:
    """The metres of the corpus: kept pieces by their first time signature, grid steps spent in each time
    signature, and how many pieces change time signature inside (re-barring alone is not a change)."""
    first: Counter = Counter()
    steps: Counter = Counter()
    changing = 0
    for p in pieces:
        sigs = set()
        for seg, metre in zip(p["segments"], p["metres"]):
            bounds = [max(0, int(c[0])) for c in metre[1:]] + [len(seg)]
            prev = 0
            for c, end in zip(metre, bounds):
                label = metre_label(c[1], c[2])
                steps[label] += max(0, min(end, len(seg)) - prev)
                prev = max(prev, min(end, len(seg)))
                sigs.add(label)
        if p["metres"] and p["metres"][0]:
            first[metre_label(*p["metres"][0][0][1:])] += 1
        changing += len(sigs) > 1
    order = lambda c: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    return {"pieces_by_first_metre": order(first), "steps_by_metre": order(steps),
            "pieces_with_metre_changes": changing}


def _write_version(out: Path, vocab: Vocabulary, report: dict, arrays: dict, meta: dict) -> None:
    """Write the build into a new sibling folder, move the file cache into it, swap it with `out` (one step)."""
    tmp = temp_sibling(out)
    try:
        atomic_write(tmp / "vocab.json", json.dumps(vocab.to_json(), indent=1))
        atomic_write(tmp / "report.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        _save_npz(tmp / CORPUS_FILE, arrays, meta, report)
        if (out / "cache").is_dir():
            os.rename(out / "cache", tmp / "cache")  # a crash from here on costs the cache only
        replace_folder(tmp, out)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def _save_npz(path: Path, arrays: dict, meta: dict, report: dict) -> None:
    """Write corpus.npz under a temporary name, then rename: a reader never sees a partial corpus."""
    fd, tmp = tempfile.mkstemp(prefix=".corpus.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta_json=np.array(json.dumps(meta)), report_json=np.array(json.dumps(report)), **arrays)
        os.chmod(tmp, file_mode())  # mkstemp makes it private; a corpus is shared like any other file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _notes_line(nk: dict | None) -> str:
    """One summary line: notes kept of the pitched notes, and the file that lost the most (issue 14)."""
    if not nk:
        return "  notes kept: not counted (corpus built by an older version)"
    line = (f"  notes kept ({nk['mode']} mode): {nk['kept']:,} of {nk['pitched']:,} pitched notes "
            f"({100 * nk['share']:.1f} %)")
    if nk["items"]:
        worst = min(nk["items"], key=lambda i: i["share"])
        line += f"; lowest file {100 * worst['share']:.0f} % ({worst['source']}); per file in report.json notes_kept"
    return line


def format_summary(result: BuildResult) -> str:
    """A few lines for the terminal: counts, split, vocabulary usage, skips by reason (first few listed)."""
    r = result.report
    sp = r["split"]
    lines = [
        f"corpus {result.out} ({'cached, unchanged sources' if result.cached else 'built'} in "
        f"{result.seconds:.1f} s)",
        f"  sources: {', '.join(r['sources'])}",
        f"  pieces read {r['pieces']['read']}, kept {r['pieces']['kept']} ({r['pieces']['segments']} segments), "
        f"tokens {r['tokens']:,}",
        f"  split: train {sp['train_pieces']} pieces / {sp['train_tokens']:,} tokens, val {sp['val_pieces']} "
        f"pieces / {sp['val_tokens']:,} tokens" + (f", +{sp['augmented_segments']} augmented segments"
                                                    if sp["augmented_segments"] else ""),
        f"  vocabulary: {r['vocabulary']['used']} of {r['vocabulary']['size']} tokens used; notes out of range: "
        f"{r['notes_out_of_range']['count']} ({r['notes_out_of_range']['action']})",
        _notes_line(r.get("notes_kept")),
        f"  skipped: {r['skipped']['total']}" + (" (" + ", ".join(f"{k} {v}" for k, v in
                                                                  r["skipped"]["counts"].items()) + ")"
                                                  if r["skipped"]["total"] else ""),
    ]
    items = r["skipped"]["items"]
    for s in items[:10]:
        lines.append(f"    {s['source']}: {s['reason']}" + (f" ({s['detail']})" if s["detail"] else ""))
    if len(items) > 10:
        lines.append(f"    ... {len(items) - 10} more in {result.out / 'report.json'}")
    return "\n".join(lines)


# --- load ----------------------------------------------------------------------------------------------------------
@dataclass
class Corpus:
    """An encoded corpus, ready for training.

    train, val: lists of int32 id arrays (one per segment, shape (steps,)); train includes augmented copies.
    train_meta, val_meta: one dict per array: name (the piece), qpm, time_signature (num, den) at its step 0,
        metre [[step, num, den], ...] (every time signature along the array, each starting a bar; the first may
        be at a step <= 0, the bar phase of step 0; see app/music/metre.py), steps_per_quarter, transposed_by
        (key transposition), shift (augmentation semitones, 0 = original).
    vocab, codec: the vocabulary and its codec (MelodyCodec, or PolyCodec for a corpus built with --mode poly:
        `config.mode`); config: the ExtractConfig used;
    meta: corpus-level metadata (format, build_key, config); report: the build report (as report.json).
    """

    path: Path
    vocab: Vocabulary
    codec: object
    config: ExtractConfig
    train: list[np.ndarray]
    val: list[np.ndarray]
    train_meta: list[dict]
    val_meta: list[dict]
    meta: dict = field(repr=False)
    report: dict = field(repr=False)

    @property
    def steps_per_quarter(self) -> int:
        return self.config.steps_per_quarter

    def window_ids(self, tx: int, stride: int = 1, which: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """X, Y int32 (n, tx) windows of the train or val pieces (Y = X shifted by one); see codec.window_ids."""
        if which not in ("train", "val"):
            raise DataError(f"which must be 'train' or 'val', got {which!r}")
        return window_ids(self.train if which == "train" else self.val, tx, stride)

    def bar_grids(self, which: str = "train") -> list[tuple[np.ndarray, np.ndarray]]:
        """Per array of the train or val set: (bar length in steps, position in the bar), int32 (steps,) each,
        from its metre (app.music.metre.bar_grid)."""
        pieces, metas = self._which(which)
        return [bar_grid(len(p), self.steps_per_quarter, m["metre"]) for p, m in zip(pieces, metas)]

    def window_ids_with_metre(self, tx: int, stride: int = 1, which: str = "train"
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """X, Y, bar_len, pos: int32 (n, tx) each. X and Y as `window_ids` (the same windows, same order);
        bar_len[i, t] and pos[i, t] are the bar length (steps) and the position in the bar of X[i, t]."""
        pieces, _ = self._which(which)
        grids = self.bar_grids(which)
        x, y = window_ids(pieces, tx, stride)
        bar, _ = window_ids([g[0] for g in grids], tx, stride)
        pos, _ = window_ids([g[1] for g in grids], tx, stride)
        return x, y, bar, pos

    def _which(self, which: str) -> tuple[list[np.ndarray], list[dict]]:
        if which not in ("train", "val"):
            raise DataError(f"which must be 'train' or 'val', got {which!r}")
        return (self.train, self.train_meta) if which == "train" else (self.val, self.val_meta)


def load_corpus(path: str | Path = DEFAULT_OUT) -> Corpus:
    """Load a corpus folder written by `build_corpus` (or the corpus.npz inside it)."""
    p = Path(path)
    f = p / CORPUS_FILE if p.is_dir() else p
    if not f.exists():
        raise ModelFolderError(f"no corpus at {str(p)!r} ({CORPUS_FILE} missing); build one with "
                               f"`python -m app music corpus --out {p}`")
    try:
        with np.load(f) as z:
            meta = json.loads(str(z["meta_json"]))
            report = json.loads(str(z["report_json"]))
            tokens, offsets = z["tokens"], z["offsets"]
            split, piece, shift, segment = z["split"], z["piece"], z["shift"], z["segment"]
    except Exception as exc:
        raise ModelFolderError(f"{f}: not a readable corpus ({type(exc).__name__}); rebuild it with "
                               f"`python -m app music corpus`") from None
    if meta.get("format") != BUILD_VERSION:
        raise ModelFolderError(f"{f}: corpus format {meta.get('format')!r}, this version reads {BUILD_VERSION!r}; "
                               f"rebuild it with `python -m app music corpus`")
    config = from_dict(ExtractConfig, {k: (tuple(v) if isinstance(v, list) else v)
                                       for k, v in meta["config"].items()}, what="corpus config")
    vocab = Vocabulary.from_json(meta["vocab"])
    codec = codec_from_vocab(vocab)
    sets: dict[int, tuple[list, list]] = {0: ([], []), 1: ([], [])}
    for k in range(len(split)):
        pm = meta["pieces"][int(piece[k])]
        seqs, metas = sets[int(split[k])]
        seqs.append(np.asarray(tokens[offsets[k]:offsets[k + 1]], dtype=np.int32))
        metre = [list(map(int, c)) for c in pm["metres"][int(segment[k])]]
        metas.append({"name": pm["name"], "qpm": pm["qpm"], "time_signature": (metre[0][1], metre[0][2]),
                      "metre": metre, "steps_per_quarter": config.steps_per_quarter,
                      "transposed_by": pm["transposed_by"], "shift": int(shift[k])})
    return Corpus(path=p, vocab=vocab, codec=codec, config=config, train=sets[0][0], val=sets[1][0],
                  train_meta=sets[0][1], val_meta=sets[1][1], meta=meta, report=report)


def corpus_for(corpus: str | Path | None = None, card: dict | None = None, progress: bool = True) -> Path:
    """The corpus folder a command uses: `corpus` if given; else the one recorded in the model's card (when it
    still exists); else the default corpus (app.core.paths), built on first use with a progress bar."""
    from app.core.folder import card_data
    from app.core.paths import default_corpus, find

    if corpus is not None:
        return Path(corpus)
    recorded = card_data(card or {}).get("path")
    if recorded:
        for candidate in (Path(recorded), find(str(recorded))):
            if candidate is not None and (candidate / CORPUS_FILE).is_file():
                return candidate
    path = default_corpus()
    if not (path / CORPUS_FILE).is_file():
        print(f"building the default corpus in {path} (first use; later runs reuse it)", file=sys.stderr)
        build_corpus(DEFAULT_SOURCES, path, progress=progress)
    return path
