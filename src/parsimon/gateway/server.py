"""Run the gateway: in the foreground (``parsimon gateway serve``) or on a background thread."""

from __future__ import annotations

import threading
import time

from parsimon.errors import ConfigError, DependencyNotInstalled
from parsimon.gateway.config import GatewayConfig

__all__ = ["GatewayServer", "serve"]


def _uvicorn():
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - uvicorn ships with the gateway extra
        raise DependencyNotInstalled("uvicorn", "gateway", "the gateway server") from exc
    return uvicorn


def _uvicorn_config(app, config: GatewayConfig, log_level: str):
    uvicorn = _uvicorn()
    return uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level,
                          access_log=False, lifespan="on", timeout_graceful_shutdown=5)


def serve(config: GatewayConfig, *, log_level: str = "warning") -> None:
    """Serve until interrupted (SIGINT/SIGTERM); the final checkpoint is signed on the way out."""
    from parsimon.gateway.app import create_app

    server = _uvicorn().Server(_uvicorn_config(create_app(config), config, log_level))
    server.run()
    if not server.started:
        raise ConfigError(f"the gateway could not start on {config.host}:{config.port} (port in use?)")


class GatewayServer:
    """A gateway on a background thread of this process (tests, benchmarks, notebooks).

    Args:
        config: The configuration; ``port=0`` picks a free port.
        log_level: uvicorn's log level.

    Example::

        with GatewayServer(load_config("gateway.toml").with_overrides(port=0)) as gw:
            client = ChatClient(base_url=gw.base_url, api_key="...")
    """

    def __init__(self, config: GatewayConfig, *, log_level: str = "warning"):
        from parsimon.gateway.app import create_app

        self.config = config
        self.app = create_app(config)
        self._server = _uvicorn().Server(_uvicorn_config(self.app, config, log_level))
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def gateway(self):
        """The running :class:`~parsimon.gateway.service.Gateway`."""
        return self.app.state.gateway

    def start(self, timeout: float = 30.0) -> GatewayServer:
        self._thread = threading.Thread(target=self._server.run, name="parsimon-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the gateway did not start on {self.config.host}:{self.config.port}")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
