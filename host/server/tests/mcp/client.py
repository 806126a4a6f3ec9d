"""The official MCP Python SDK (PyPI `mcp`) against weft's /mcp.

Run by host/server/tests/mcp.rs with WEFT_MCP_URL, WEFT_OPERATOR_KEY and
WEFT_VIEWER_KEY set. It lists the tools (one per graph), calls the
assistant's tool twice on one thread, reads the thread and a run as
resources, and checks that a viewer's call is refused as a tool error.
The last line it prints is a JSON summary for the Rust test.
"""

import asyncio
import json
import os

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL = os.environ["WEFT_MCP_URL"]
QUESTION = "How many devices does customer 1042 have?"


def connect(key):
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(120.0)
    )
    return http, Client(streamable_http_client(URL, http_client=http))


async def main():
    http, client = connect(os.environ["WEFT_OPERATOR_KEY"])
    async with http, client:
        tools = await client.list_tools()
        names = sorted(t.name for t in tools.tools)
        assistant = next(t for t in tools.tools if t.name == "assistant")
        assert assistant.input_schema["required"] == ["message"], assistant.input_schema

        first = await client.call_tool("assistant", {"message": QUESTION})
        assert not first.is_error, first
        reply = first.content[0].text
        facts = first.structured_content
        assert facts["reply"] == reply, facts
        thread = facts["threadId"]

        again = await client.call_tool(
            "assistant", {"message": "And what about customer 1042's properties?", "thread": thread}
        )
        assert not again.is_error, again
        assert again.structured_content["threadId"] == thread, again.structured_content

        unknown = None
        try:
            await client.call_tool("no-such-graph", {"message": "hi"})
        except Exception as e:  # the SDK raises the server's JSON-RPC error
            unknown = str(e)

        listed = await client.list_resources()
        uris = [r.uri for r in listed.resources]
        thread_uri = f"weft://threads/{thread}"
        assert str(thread_uri) in [str(u) for u in uris], uris
        read = await client.read_resource(thread_uri)
        stored = json.loads(read.contents[0].text)
        run = stored["runs"][0]["id"]
        read_run = await client.read_resource(f"weft://runs/{run}")
        stored_run = json.loads(read_run.contents[0].text)

    http, viewer = connect(os.environ["WEFT_VIEWER_KEY"])
    async with http, viewer:
        viewer_tools = await viewer.list_tools()
        refused = await viewer.call_tool("assistant", {"message": QUESTION})

    print(
        json.dumps(
            {
                "tools": names,
                "reply": reply,
                "thread": thread,
                "runs": [facts["runId"], again.structured_content["runId"]],
                "unknown": unknown,
                "thread_runs": len(stored["runs"]),
                "run": stored_run,
                "viewer_tools": len(viewer_tools.tools),
                "viewer_refused": bool(refused.is_error),
                "viewer_message": refused.content[0].text if refused.content else "",
            }
        )
    )


asyncio.run(main())
