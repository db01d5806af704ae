"""Fault injection for crash-safety tests: run a function in a forked child that dies (os._exit, like kill -9:
no cleanup, no finally blocks) just before its k-th filesystem change.

`crash_points(fn)` yields k = 1, 2, ... and the child's fate, until a run gets through without reaching its k-th
change; a test checks after each crash what a user would see, then what the next run leaves behind.
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import tempfile

CRASHED = 99


def _patch_all(k: int) -> None:
    count = [0]

    def step():
        count[0] += 1
        if count[0] >= k:
            os._exit(CRASHED)

    def wrap(fn):
        def inner(*a, **kw):
            step()
            return fn(*a, **kw)
        return inner

    real_open = builtins.open

    def opener(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+"):
            step()
        return real_open(file, mode, *a, **kw)

    builtins.open = io.open = opener
    for name in ("rename", "replace", "mkdir", "unlink", "remove", "rmdir", "link", "symlink"):
        setattr(os, name, wrap(getattr(os, name)))
    shutil.rmtree = wrap(shutil.rmtree)
    tempfile.mkdtemp = wrap(tempfile.mkdtemp)
    tempfile.mkstemp = wrap(tempfile.mkstemp)
    import app.core.outputs as outputs

    outputs._renameat2 = wrap(outputs._renameat2)


def run_crashing(fn, k: int) -> bool:
    """Run fn() in a forked child that dies before its k-th filesystem change. True if fn() finished."""
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            _patch_all(k)
            fn()
        except BaseException:  # noqa: BLE001 - report, never return into the test runner from the child
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, CRASHED), f"the child failed with exit status {code} (not an injected crash)"
    return code == 0


def crash_points(fn, limit: int = 500):
    """Yield k for k = 1, 2 ... while the run with a crash at k crashed; stop at the first run that finishes."""
    for k in range(1, limit):
        if run_crashing(fn, k):
            return
        yield k
    raise AssertionError(f"the function made more than {limit} filesystem changes")
