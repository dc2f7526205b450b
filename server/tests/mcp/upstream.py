"""An MCP server (the official Python SDK's MCPServer) for the gateway's tests: a few tools,
each call recorded in the file $WRIT_MCP_LOG (one JSON line) so a test can tell what reached it.
`pay` verifies the Writ credential the gateway sends with it (PyJWT, the issuer's JWKS read
from $WRIT_JWKS_FILE): signed by Writ, for this upstream, in scope, bound to the very
arguments it is about to execute. $WRIT_MCP_VARIANT=amount-text makes `pay`'s `amount` a string. Usage: python3 upstream.py PORT [json]"""

import base64
import hashlib
import json
import os
import sys

import jwt
from mcp.server.mcpserver import Context, MCPServer

LOG = os.environ["WRIT_MCP_LOG"]
app = MCPServer("payments")


def record(tool: str, arguments: dict, credential=None) -> None:
    with open(LOG, "a") as f:
        f.write(json.dumps({"tool": tool, "arguments": arguments, "credential": credential}) + "\n")


def verify(ctx: Context, tool: str, arguments: dict):
    """The credential of this call, checked; None when there is none."""
    auth = (ctx.headers or {}).get("authorization", "")
    if not auth.startswith("Bearer "):
        return None
    token = auth[len("Bearer "):]
    try:
        with open(os.environ["WRIT_JWKS_FILE"]) as f:
            jwks = json.load(f)
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
        # Writ's clock in the tests is fixed in the future: the signature and claims are checked,
        # the times against the token's own.
        claims = jwt.decode(token, key, algorithms=["EdDSA", "ES256"], audience="payments",
                            options={"verify_exp": False, "verify_iat": False})
    except Exception as e:  # noqa: BLE001 - the test reads the reason
        return {"verified": False, "error": str(e)}
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    scope = claims["scope"]
    return {
        "verified": True,
        "sub": claims["sub"],
        "txn": claims["txn"],
        "lifetime": claims["exp"] - claims["iat"],
        "in_scope": len(scope) == 1 and scope[0]["action"] == tool and scope[0]["resource"] == 'McpServer::"payments"',
        "same_arguments": scope[0].get("input#S256") == digest,
    }


if os.environ.get("WRIT_MCP_VARIANT") == "amount-text":
    # The same tool with another input schema (`amount` a string): what a gateway must notice.
    @app.tool()
    def pay(amount: str, to: str, ctx: Context) -> str:
        """Pay an amount to someone."""
        arguments = {"amount": amount, "to": to}
        record("pay", arguments, verify(ctx, "pay", arguments))
        return f"paid {amount} to {to}"
else:
    @app.tool()
    def pay(amount: int, to: str, ctx: Context) -> str:
        """Pay an amount to someone."""
        arguments = {"amount": amount, "to": to}
        record("pay", arguments, verify(ctx, "pay", arguments))
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
