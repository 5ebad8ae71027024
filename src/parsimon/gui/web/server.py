"""A static file server on 127.0.0.1 for the task pages (MiniWoB's HTML, our own apps).

Each mount maps a URL prefix to a folder; ``files`` adds in-memory files (shared scripts generated in
Python). Nothing is fetched from outside; the server binds loopback only and picks a free port.

Example:
    >>> import tempfile, pathlib, urllib.request
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.html").write_text("<p>hi</p>")
    >>> with StaticServer({"/x/": d}) as srv:
    ...     urllib.request.urlopen(srv.url("/x/a.html")).read()
    b'<p>hi</p>'
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import sys
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from parsimon.errors import ConfigError

__all__ = ["StaticServer"]


class _Handler(SimpleHTTPRequestHandler):
    mounts: list[tuple[str, Path]] = []
    files: dict[str, tuple[bytes, str]] = {}

    def log_message(self, *args) -> None:  # keep test and benchmark output clean
        pass

    def do_GET(self) -> None:  # noqa: D102 - the handler's hook
        path = urllib.parse.urlsplit(self.path).path
        if path in self.files:
            body, ctype = self.files[path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:  # noqa: D102 - the handler's hook
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        for prefix, root in self.mounts:
            bare = prefix.rstrip("/")
            if path == bare or path.startswith(bare + "/"):
                rel = path[len(bare):].lstrip("/")
                target = (root / rel).resolve()
                if root in target.parents or target == root:
                    return os.fspath(target)
        return os.fspath(Path(os.devnull) / "missing")

    def guess_type(self, path: str) -> str:  # noqa: D102 - the handler's hook
        ctype = super().guess_type(path)
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            return ctype + "; charset=utf-8"
        return ctype

    def end_headers(self) -> None:  # noqa: D102 - the handler's hook
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - the server's hook
        # the browser dropped the connection (a page navigated away mid-transfer): nothing to report
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class StaticServer:
    """Serve folders (and in-memory files) on ``127.0.0.1`` in a daemon thread.

    Args:
        mounts: ``{"/prefix/": folder}``.
        files: ``{"/path.js": text or bytes}`` served from memory (content type from the extension).
        port: 0 picks a free port.
    """

    def __init__(self, mounts: dict[str, str | os.PathLike], files: dict[str, str | bytes] | None = None,
                 port: int = 0) -> None:
        checked = []
        for prefix, folder in mounts.items():
            root = Path(folder).resolve()
            if not root.is_dir():
                raise ConfigError(f"`mounts[{prefix!r}]` must be a folder, got {folder}")
            checked.append(("/" + prefix.strip("/") + "/", root))
        served = {}
        for path, body in (files or {}).items():
            data = body.encode("utf-8") if isinstance(body, str) else body
            served[path] = (data, mimetypes.guess_type(path)[0] or "application/octet-stream")
        handler = type("Handler", (_Handler,), {"mounts": sorted(checked, key=lambda m: -len(m[0])),
                                                 "files": served})
        self._server = _Server(("127.0.0.1", port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port served."""
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path``."""
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def start(self) -> StaticServer:
        """Start serving (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                            name="parsimon-static")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> StaticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
