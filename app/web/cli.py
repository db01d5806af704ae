"""`python -m app web`: serve the page on this computer (127.0.0.1 by default).

Gradio is imported only when the command runs. The server never reaches the internet: analytics and the version
check are off (GRADIO_ANALYTICS_ENABLED=False), Hugging Face Hub is offline, no share link is made, the page uses
system fonts, and run history, monitoring and MCP are off.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

DEFAULT_PORT = 7860


def register(parser: argparse.ArgumentParser) -> None:
    from app.web.uploads import MiB, UploadLimits

    d = UploadLimits()
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; the page has no login)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--models-dir", default="models",
                        help="folder whose model folders are offered, and where retrained models go (default models)")
    parser.add_argument("--outputs-dir", default="outputs/web",
                        help="generated files, uploads and training jobs (default outputs/web)")
    parser.add_argument("--max-files", type=int, default=d.max_files,
                        help=f"most files in one upload (default {d.max_files})")
    parser.add_argument("--max-file-mb", type=float, default=d.max_file_bytes / MiB,
                        help=f"largest uploaded file in MB (default {d.max_file_bytes / MiB:g})")
    parser.add_argument("--queue-size", type=int, default=64,
                        help="generation requests that may wait at once (default 64); more are refused")
    parser.add_argument("--synth", choices=("auto", "fluidsynth", "builtin"), default="auto",
                        help="WAV renderer (default auto: FluidSynth when installed)")
    parser.set_defaults(func=cmd_web)


def offline_environment() -> None:
    """Environment that keeps Gradio and huggingface_hub from phoning home (set before importing gradio)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("GRADIO_SHARE", "False")


def cmd_web(args) -> int:
    import dataclasses

    from app.errors import OptionError
    from app.web.uploads import MiB, UploadLimits

    if not 1 <= args.port <= 65535:
        raise OptionError(f"--port must be 1..65535, got {args.port}")
    if not 1 <= args.max_files <= 10000:
        raise OptionError(f"--max-files must be 1..10000, got {args.max_files}")
    if not 0 < args.max_file_mb <= 2048:
        raise OptionError(f"--max-file-mb must be > 0 and at most 2048, got {args.max_file_mb}")
    if not 1 <= args.queue_size <= 10000:
        raise OptionError(f"--queue-size must be 1..10000, got {args.queue_size}")
    offline_environment()
    import gradio as gr  # noqa: F401  (after the environment is set)

    from app.web.app import CSS, WebConfig, build_app, served_root, theme

    limits = dataclasses.replace(UploadLimits(), max_files=args.max_files,
                                 max_file_bytes=int(args.max_file_mb * MiB))
    limits = dataclasses.replace(limits, max_total_bytes=max(limits.max_total_bytes, limits.max_file_bytes))
    outputs = Path(args.outputs_dir).resolve()
    outputs.mkdir(parents=True, exist_ok=True)
    config = WebConfig(models_dir=Path(args.models_dir), outputs_dir=outputs, limits=limits, synth=args.synth)
    demo = build_app(config)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=2)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach this address can use the page (no login)",
              file=sys.stderr)

    def stop(signum, frame):  # SIGTERM: leave through the normal path so training child processes are stopped
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        demo.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False,
                    show_error=False, allowed_paths=[str(served_root(outputs))], max_file_size=limits.max_file_bytes,
                    footer_links=["api"], run_history=False, enable_monitoring=False, mcp_server=False,
                    ssr_mode=False, pwa=False, theme=theme(), css=CSS, quiet=False)
    except KeyboardInterrupt:
        pass
    finally:
        demo.training_queue.close()
        demo.close()
    return 0
