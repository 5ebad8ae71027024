"""Fixtures: mock upstreams on loopback and gateways built from TOML text."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from parsimon.gateway import GatewayServer
from parsimon.gateway.config import config_from_document
from parsimon.gateway.mock import MockUpstream
from parsimon.governance.document import parse_document

HERE = Path(__file__).parent
MCP_SERVER = HERE / "mcp_files_server.py"


def gateway_config(text: str):
    """A validated config from TOML text (port 0)."""
    if "[gateway]" not in text:
        text = "[gateway]\nport = 0\n" + text
    return config_from_document(parse_document(text, fmt="toml", source="gateway.toml"))


def one_model(base_url: str, *, price_in: float = 1.0, price_out: float = 2.0, extra: str = "") -> str:
    """TOML for one upstream with one model ``m`` (alias ``default``)."""
    return f"""
[gateway]
port = 0
checkpoint_interval_s = 0
[upstreams.mock]
base_url = "{base_url}"
retries = 1
backoff_s = 0.01
[models.m]
upstream = "mock"
name = "mock"
price_in_per_1k = {price_in}
price_out_per_1k = {price_out}
aliases = ["default"]
{extra}
"""


@pytest.fixture
def mock_upstream():
    with MockUpstream("echo") as up:
        yield up


@pytest.fixture
def serve():
    """``serve(toml_text)`` starts a gateway (stopped at the end of the test)."""
    started = []

    def start(text: str) -> GatewayServer:
        gw = GatewayServer(gateway_config(text)).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


PY = sys.executable
