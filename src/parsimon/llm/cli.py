"""``parsimon llm``: serve the local model, chat with the configured endpoint."""

from __future__ import annotations

import typer

__all__ = ["COMMANDS"]

app = typer.Typer(
    help="The shared LLM client: `serve` runs SmolLM2-135M-Instruct (or any GGUF file, `--model PATH.gguf`) on "
    "127.0.0.1, `chat` talks to the configured endpoint (PARSIMON_LLM_BASE_URL; the local server by default).",
    no_args_is_help=True,
)


@app.command()
def serve(
    port: int = typer.Option(8765, help="TCP port on 127.0.0.1 (the client's default endpoint uses 8765)."),
    threads: int = typer.Option(1, help="Generation threads; 1 is fastest on a shared 2-core machine."),
    ctx: int = typer.Option(2048, help="Context length in tokens."),
    model: str = typer.Option(None, help="Path of another GGUF file, e.g. a Qwen3 instruct model, to serve "
                              "instead of the built-in SmolLM2-135M-Instruct (agents then use it through the "
                              "default endpoint)."),
    extra_buffers: bool = typer.Option(None, "--extra-buffers/--no-extra-buffers",
                                       help="llama.cpp's extra CPU buffer types (AMX, weight repacking); default: "
                                       "off on CPUs that advertise AMX (some VMs crash with it)."),
) -> None:
    """Serve a local model behind an OpenAI-compatible API until interrupted (Ctrl-C).

    Any GGUF chat model works: `parsimon llm serve --model ~/models/Qwen3-4B-Instruct-Q4_K_M.gguf --threads 2`,
    then every agent pointed at the default endpoint uses it.
    """
    import signal
    import time
    from pathlib import Path

    from parsimon.errors import ConfigError
    from parsimon.llm.server import LocalServer

    alias = None
    if model is not None:
        if not Path(model).is_file():
            raise ConfigError(f"`--model` must be the path of a GGUF file, got {model!r} (no such file)")
        alias = Path(model).stem

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    # Stop cleanly (the model server child included) on SIGTERM and SIGHUP, and on SIGINT even when a shell
    # started this command in the background with SIGINT ignored.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _interrupt)
    srv = LocalServer(port=port, n_threads=threads, n_ctx=ctx, model=model, extra_buffers=extra_buffers,
                      **({"alias": alias} if alias else {}))
    # The signal may arrive while start() is still waiting for the child to answer (it already serves then),
    # so start-up is inside the try: the child is stopped and the exit is clean either way.
    try:
        srv.start()
        typer.echo(f"serving {srv.alias} at {srv.base_url} (Ctrl-C to stop)")
        while srv.proc is not None and srv.proc.poll() is None:
            time.sleep(0.5)
        typer.echo("the server exited", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # a second signal must not cut the stop short
            signal.signal(sig, signal.SIG_IGN)
        srv.stop()
    typer.echo("stopped")


@app.command()
def chat(
    question: str = typer.Argument(..., help="The user message."),
    system: str = typer.Option(None, help="An optional system message."),
    base_url: str = typer.Option(None, help="Endpoint base URL (default: $PARSIMON_LLM_BASE_URL or the local server)."),
    model: str = typer.Option(None, help="Model name (default: $PARSIMON_LLM_MODEL or smollm2-135m-instruct)."),
    max_tokens: int = typer.Option(256, min=1, help="Upper bound on reply tokens."),
    temperature: float = typer.Option(0.0, min=0.0, help="Sampling temperature (0 = greedy)."),
    timeout: float = typer.Option(120.0, min=0.1, help="Seconds the question may take in all (retries included); "
                                  "starting the local model is not counted."),
    autostart: bool = typer.Option(
        True, help="If the endpoint is the local default and nothing answers there, start the local model "
        "for this one question."
    ),
    show_usage: bool = typer.Option(False, "--usage", help="Print token usage and cost after the reply."),
) -> None:
    """Ask one question and print the reply; the call is charged to the governance ledger."""
    from parsimon.llm.client import ChatClient
    from parsimon.llm.endpoint import ensure_endpoint

    with ensure_endpoint(base_url, model, autostart=autostart) as ep, \
            ChatClient(base_url=ep.base_url, model=ep.model, timeout=timeout, deadline=timeout) as client:
        reply = client.chat(
            ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": question}],
            max_tokens=max_tokens, temperature=temperature,
        )
    typer.echo(reply.text)
    if show_usage:
        typer.echo(
            f"[{reply.model}: {reply.usage.prompt_tokens} prompt + {reply.usage.completion_tokens} completion "
            f"tokens, cost {reply.cost:.6f}, {reply.latency_s:.2f} s, {reply.attempts} attempt(s)]", err=True
        )


COMMANDS = {"llm": app}
