"""A small OpenID Connect provider for the single sign-on tests, served over real HTTP in a thread:
discovery, the authorization endpoint (it signs in whoever the test says, at once), the token
endpoint (client secret checked, code single-use, an RS256 ID token with the request's nonce) and
the keys. What it puts in the ID token is the test's to choose (``claims``, ``audience``,
``issuer``, ``key``), so the tests can make it lie."""
from __future__ import annotations

import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


class Provider:
    def __init__(self, client_id: str = "gridwatch", client_secret: str = "s3cret-for-tests") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.signing_key: RSAKey = self.key          # a test may sign with another key (not in the JWKS)
        self.claims: dict[str, Any] = {}             # the next sign-in's claims (sub, preferred_username, …)
        self.audience: str | None = None             # None: the client id
        self.issuer_claim: str | None = None         # None: the provider's own URL
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests = 0
        app = Flask("test-oidc-provider")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                            "response_types_supported": ["code"], "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [self.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize():
            a = request.args
            if a.get("client_id") != self.client_id or a.get("response_type") != "code":
                return redirect(f"{a.get('redirect_uri')}?{urlencode({'error': 'unauthorized_client', 'state': a.get('state', '')})}")
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": a.get("nonce"), "redirect_uri": a.get("redirect_uri"),
                                "claims": dict(self.claims)}
            return redirect(f"{a['redirect_uri']}?{urlencode({'code': code, 'state': a.get('state', '')})}")

        @app.post("/token")
        def token():
            self.token_requests += 1
            auth = request.authorization
            cid, secret = (auth.username, auth.password) if auth else (request.form.get("client_id"),
                                                                        request.form.get("client_secret"))
            if (cid, secret) != (self.client_id, self.client_secret):
                return jsonify({"error": "invalid_client"}), 401
            grant = self.codes.pop(request.form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != request.form.get("redirect_uri"):
                return jsonify({"error": "invalid_grant"}), 400
            now = int(time.time())
            claims = {"iss": self.issuer_claim or self.url, "aud": self.audience or self.client_id, "iat": now,
                      "exp": now + 300, "nonce": grant["nonce"], "sub": "s-0", **grant["claims"]}
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.signing_key)
            return jsonify({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                            "id_token": id_token})

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Provider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
