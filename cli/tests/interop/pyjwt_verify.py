"""Verify a Writ credential with PyJWT, using only the JWKS `writ jwks` printed.

usage: pyjwt_verify.py <JWKS_FILE> <TOKEN_FILE> <AUDIENCE>
Prints the verified claims as JSON; exits non-zero (with PyJWT's error) if verification fails.
"""
import json
import sys

import jwt

jwks = json.load(open(sys.argv[1]))
token = open(sys.argv[2]).read().strip()
header = jwt.get_unverified_header(token)
assert header["typ"] == "txntoken+jwt", header
key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
public = jwt.PyJWK.from_dict(key)
claims = jwt.decode(token, public, algorithms=[key["alg"]], audience=sys.argv[3], issuer="writ")
print(json.dumps(claims))
