"""The loopback file server: dropped connections are not reported, other errors are."""

from __future__ import annotations

from parsimon.gui.web.server import StaticServer


def _fail_with(server, exc):
    try:
        raise exc
    except Exception:
        server._server.handle_error(None, ("127.0.0.1", 1))


def test_a_dropped_connection_prints_nothing_but_a_real_error_does(tmp_path, capsys):
    srv = StaticServer({"/x/": tmp_path})
    try:
        _fail_with(srv, BrokenPipeError(32, "Broken pipe"))
        _fail_with(srv, ConnectionResetError(104, "reset"))
        assert capsys.readouterr().err == ""
        _fail_with(srv, ValueError("bad request handling"))
        assert "ValueError: bad request handling" in capsys.readouterr().err
    finally:
        srv.stop()
