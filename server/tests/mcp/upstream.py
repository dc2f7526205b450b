"""An MCP server (the official Python SDK's MCPServer) for the gateway's tests: a few tools,
each call recorded in the file $WRIT_MCP_LOG (one JSON line) so a test can tell what reached it.
Usage: python3 upstream.py PORT [json]"""

import json
import os
import sys

from mcp.server.mcpserver import Context, MCPServer

LOG = os.environ["WRIT_MCP_LOG"]
app = MCPServer("payments")


def record(tool: str, arguments: dict) -> None:
    with open(LOG, "a") as f:
        f.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


@app.tool()
def pay(amount: int, to: str) -> str:
    """Pay an amount to someone."""
    record("pay", {"amount": amount, "to": to})
    return f"paid {amount} to {to}"


@app.tool()
def lookup(name: str) -> str:
    """Look a payee up."""
    record("lookup", {"name": name})
    return f"{name}: IBAN DE00 0000"


@app.tool()
def admin_reset() -> str:
    """Wipe every account."""
    record("admin_reset", {})
    return "wiped"


@app.tool()
async def report(steps: int, ctx: Context) -> str:
    """A long report: progress as log messages, then a large result."""
    record("report", {"steps": steps})
    for i in range(steps):
        await ctx.info(f"step {i + 1} of {steps}")
    return "".join(f"line {i}\n" for i in range(2000))


if __name__ == "__main__":
    port = int(sys.argv[1])
    json_response = len(sys.argv) > 2 and sys.argv[2] == "json"
    app.run("streamable-http", host="127.0.0.1", port=port, json_response=json_response)
