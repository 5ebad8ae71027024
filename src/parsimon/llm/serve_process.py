"""The local model server's process: llama-cpp-python's OpenAI-compatible server, started by
:class:`parsimon.llm.LocalServer` as ``python -m parsimon.llm.serve_process [--no-extra-buffers] ARGS``.

``--no-extra-buffers`` loads the model without llama.cpp's extra CPU buffer types (AMX tiles, weight
repacking). Some virtual machines advertise AMX in CPUID but do not enable its register state; llama.cpp
then crashes (SIGSEGV) on the first batched decode, i.e. on the first chat request. Plain CPU buffers
avoid that path; for models of this size the speed difference is small.

The server runs in its own session (a terminal's Ctrl-C goes to its parent, which stops it in order) but
does not outlive its parent: it exits when the process that started it is gone, even after a SIGKILL.
"""

from __future__ import annotations

import os
import sys
import threading
import time

__all__ = ["main"]

NO_EXTRA_BUFFERS = "--no-extra-buffers"


def _disable_extra_buffers() -> None:
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p

    lib.llama_model_default_params = params


def _exit_with_parent(parent: int, period: float = 1.0) -> None:
    """Exit the process once ``parent`` is no longer its parent (it died; the process was re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Run the server with ``argv`` (default ``sys.argv[1:]``) until it is stopped."""
    _exit_with_parent(os.getppid())
    args = list(sys.argv[1:] if argv is None else argv)
    if NO_EXTRA_BUFFERS in args:
        args.remove(NO_EXTRA_BUFFERS)
        _disable_extra_buffers()
    sys.argv = [sys.argv[0], *args]
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
