"""A small OpenID Connect provider over real HTTP, for testing single sign-on through `st.login`.

It speaks the authorisation-code flow the way Streamlit (via Authlib) uses it: discovery document,
an authorisation page where the test picks who signs in, a token endpoint that checks the client
secret, the redirect URI and the PKCE verifier, and an RS256-signed ID token carrying the nonce,
issuer, audience, expiry and the chosen identity's claims (email, email_verified, name). Every request
is recorded so a test can see the token exchange really happened.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt  # Authlib's own JOSE library (a dependency of Authlib)
from joserfc.jwk import RSAKey

CLIENT_ID = "values-workbench-test"
CLIENT_SECRET = "fake-provider-secret-" + "x" * 16


@dataclass
class FakeProvider:
    issuer: str
    identities: Sequence[Mapping[str, object]]
    requests: list[str] = field(default_factory=list)
    tokens_issued: int = 0

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


@contextlib.contextmanager
def oidc_provider(identities: Sequence[Mapping[str, object]]) -> Iterator[FakeProvider]:
    """Serve a provider on 127.0.0.1 (a free port) whose sign-in page offers these identities (claims)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    codes: dict[str, dict] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    provider = FakeProvider(issuer=f"http://127.0.0.1:{server.server_address[1]}", identities=identities)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = {}) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            provider.requests.append(f"GET {url.path}")
            if url.path == "/.well-known/openid-configuration":
                self._json(200, {
                    "issuer": provider.issuer,
                    "authorization_endpoint": f"{provider.issuer}/authorize",
                    "token_endpoint": f"{provider.issuer}/token",
                    "jwks_uri": f"{provider.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                })
            elif url.path == "/jwks":
                self._json(200, {"keys": [{**key.as_dict(private=False), "use": "sig", "alg": "RS256"}]})
            elif url.path == "/authorize":
                if query.get("client_id") != CLIENT_ID:
                    self._send(400, b"unknown client", "text/plain")
                    return
                forms = "".join(
                    f'<form method="get" action="/approve"><input type="hidden" name="who" value="{i}">'
                    + "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                              for k, v in query.items())
                    + f'<button type="submit">Continue as {html.escape(str(claims["email"]))}</button></form>'
                    for i, claims in enumerate(provider.identities))
                self._send(200, f"<html><body><h1>Fake provider</h1>{forms}</body></html>".encode(), "text/html")
            elif url.path == "/approve":
                code = secrets.token_urlsafe(16)
                codes[code] = {**query, "claims": dict(provider.identities[int(query["who"])])}
                target = query["redirect_uri"] + "?" + urllib.parse.urlencode(
                    {"code": code, "state": query.get("state", "")})
                self._send(302, b"", "text/plain", {"Location": target})
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            provider.requests.append(f"POST {self.path}")
            if self.path != "/token":
                self._send(404, b"not found", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                decoded = base64.b64decode(basic[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
                client_id, client_secret = urllib.parse.unquote(client_id), urllib.parse.unquote(client_secret)
            grant = codes.pop(form.get("code", ""), None)
            if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
                self._json(401, {"error": "invalid_client"})
                return
            if grant is None or grant.get("redirect_uri") != form.get("redirect_uri"):
                self._json(400, {"error": "invalid_grant"})
                return
            if "code_challenge" in grant:
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                if challenge.decode() != grant["code_challenge"]:
                    self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                    return
            now = int(time.time())
            claims = {"iss": provider.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 600,
                      "sub": hashlib.sha256(str(grant["claims"]["email"]).encode()).hexdigest()[:20],
                      **grant["claims"]}
            if grant.get("nonce"):
                claims["nonce"] = grant["nonce"]
            id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
            provider.tokens_issued += 1
            self._json(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 600, "id_token": id_token})

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def secrets_toml(provider: FakeProvider, app_url: str, *, label: str) -> str:
    """The `[auth]` section that points Streamlit at `provider` for an app served at `app_url`."""
    return "\n".join([
        "[auth]",
        f'redirect_uri = "{app_url}/oauth2callback"',
        f'cookie_secret = "{secrets.token_urlsafe(32)}"',
        f'client_id = "{CLIENT_ID}"',
        f'client_secret = "{CLIENT_SECRET}"',
        f'server_metadata_url = "{provider.metadata_url}"',
        f'label = "{label}"',
        "",
    ])
