"""Run llama-cpp-python's OpenAI-compatible server with llama.cpp's extra CPU buffer types switched off
where they fault.

llama.cpp repacks quantised weights into "extra" buffer types for faster kernels; on a CPU that reports
Intel AMX it uses AMX tiles (``ldtilecfg``). In virtual machines that list AMX but do not grant the
tile state (seen on Firecracker guests), the first matrix product dies with a general protection fault,
so the server exits on its first request. With extra buffers off, llama.cpp uses its ordinary AVX kernels.
``PARSIMON_LLM_EXTRA_BUFFERS=1`` keeps them on, ``=0`` turns them off anywhere.

Usage: ``python -m parsimon.llm._llama_server <llama_cpp.server arguments>``.
"""

from __future__ import annotations

import os


def _cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return any(line.startswith("flags") and " amx_tile" in line for line in fh)
    except OSError:
        return False


def extra_buffers_enabled() -> bool:
    """Whether llama.cpp may use its extra buffer types here (see the module docstring)."""
    env = os.environ.get("PARSIMON_LLM_EXTRA_BUFFERS")
    if env in ("0", "1"):
        return env == "1"
    return not _cpu_has_amx()


def main() -> None:
    import llama_cpp.llama_cpp as lib

    if not extra_buffers_enabled():
        default = lib.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = False
            return p

        lib.llama_model_default_params = params
    from llama_cpp.server.__main__ import main as serve

    serve()


if __name__ == "__main__":
    main()
