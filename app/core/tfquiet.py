"""Import TensorFlow once, without its start-up lines (import this module before `import keras`/`tensorflow`).

TensorFlow 2.21 logs through C++ absl before absl is initialised, so TF_CPP_MIN_LOG_LEVEL alone does not stop the
"All log messages before absl::InitializeLog()" / "oneDNN custom operations are on" lines (printed twice, once per
shared library). We set the level for later messages and point file descriptor 2 at /dev/null while the libraries
load; Python exceptions raised by the import still reach the caller and are printed normally.
Set APP_TF_VERBOSE=1 to see TensorFlow's own lines again.
"""

from __future__ import annotations

import os
import sys


def quiet_import() -> None:
    if "tensorflow" in sys.modules or os.environ.get("APP_TF_VERBOSE"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):  # no usable stderr descriptor (e.g. some embedded runners): import loudly
        import tensorflow  # noqa: F401
        return
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


quiet_import()
