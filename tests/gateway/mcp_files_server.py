"""A small MCP server for the gateway tests (stdio by default; ``--http PORT`` for streamable HTTP).

Its tools act on an in-memory file table, so a test can see whether a call really ran.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("files")
FILES: dict[str, str] = {"/tmp/a.txt": "alpha", "/etc/passwd": "root:x:0:0"}


@server.tool()
def read_file(path: str) -> str:
    """Read a file."""
    return FILES.get(path, f"no such file: {path}")


@server.tool()
def delete_file(path: str) -> str:
    """Delete a file."""
    existed = FILES.pop(path, None) is not None
    return f"deleted {path}" if existed else f"no such file: {path}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--http":
        import uvicorn

        uvicorn.run(server.streamable_http_app(json_response=True), host="127.0.0.1", port=int(sys.argv[2]),
                    log_level="error")
    else:
        server.run("stdio")
