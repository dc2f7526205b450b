"""An agent (the official Python SDK's MCP client) going through Writ's MCP gateway: it lists
the tools, makes a scripted set of calls and prints what it saw as one JSON object.
Usage: python3 agent.py URL TOKEN [TASK]
   or: python3 agent.py rounds TOKEN TASK N URL... — N small `pay` calls made in turn through
       each URL (one session per URL, all open at once), the outcome of each printed in order."""

import contextlib
import hashlib
import json
import sys

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


async def main(url: str, token: str, task: str) -> None:
    out: dict = {"logs": []}

    async def on_log(params) -> None:
        out["logs"].append(params.data)

    headers = {"Authorization": f"Bearer {token}"}
    if task:
        headers["x-writ-task"] = task
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, logging_callback=on_log) as session:
                await session.initialize()
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                calls = {
                    "lookup": ("lookup", {"name": "acme"}),
                    "small": ("pay", {"amount": 50, "to": "acme"}),
                    "large": ("pay", {"amount": 5000, "to": "mallory"}),
                    "admin": ("admin_reset", {}),
                    "report": ("report", {"steps": 3}),
                }
                for key, (tool, args) in calls.items():
                    try:
                        r = await session.call_tool(tool, args)
                        text = "".join(c.text for c in r.content if getattr(c, "type", "") == "text")
                        digest = hashlib.sha256(text.encode()).hexdigest()
                        out[key] = {"ok": not r.is_error, "text": text[:200], "len": len(text), "sha256": digest}
                    except MCPError as e:
                        out[key] = {"error": e.error.code, "message": e.error.message}
    print(json.dumps(out))


async def rounds(token: str, task: str, n: int, urls: list) -> None:
    headers = {"Authorization": f"Bearer {token}", "x-writ-task": task}
    outcomes = []
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for url in urls:
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=30))
            read, write = await stack.enter_async_context(streamable_http_client(url, http_client=http))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            sessions.append(session)
        for i in range(n):
            try:
                r = await sessions[i % len(sessions)].call_tool("pay", {"amount": 10 + i, "to": "acme"})
                outcomes.append({"ok": not r.is_error})
            except MCPError as e:
                outcomes.append({"error": e.error.code, "message": e.error.message})
    print(json.dumps(outcomes))


if sys.argv[1] == "rounds":
    anyio.run(rounds, sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
else:
    anyio.run(main, sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
