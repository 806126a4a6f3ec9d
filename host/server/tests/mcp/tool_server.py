"""An MCP server with a few tools, for the `tools` capability's tests,
written with the official MCP Python SDK (PyPI `mcp`).

    python tool_server.py stdio            # MCP on standard input and output
    python tool_server.py http             # Streamable HTTP on 127.0.0.1 at a
                                           # port of the system's choosing,
                                           # printed as `port N` once it listens

Tools: `add(a, b)`, `echo(text)`, `fail(message)` (the tool reports an
error), `slow(seconds)` (answers after sleeping), `count()` (how many times
it was called in this process: a replay must not call it), `secret()` (a
tool tests grant to no node).
"""

import socket
import sys
import time

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("weft-test-tools")
calls = 0


@server.tool()
def add(a: float, b: float) -> float:
    """Adds two numbers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Answers with the text it was given."""
    return text


@server.tool()
def fail(message: str) -> str:
    """Always fails, with the message it was given."""
    raise ValueError(message)


@server.tool()
def slow(seconds: float) -> str:
    """Answers after sleeping for the given seconds."""
    time.sleep(seconds)
    return "done"


@server.tool()
def count() -> int:
    """How many times this tool was called in this process."""
    global calls
    calls += 1
    return calls


@server.tool()
def secret() -> str:
    """A tool no node is granted."""
    return "secret"


def serve_http() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(f"port {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    if sys.argv[1:] == ["stdio"]:
        server.run("stdio")
    elif sys.argv[1:] == ["http"]:
        serve_http()
    else:
        sys.exit("usage: tool_server.py stdio|http")
