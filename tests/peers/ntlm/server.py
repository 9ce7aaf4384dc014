#!/usr/bin/env python3
"""An NTLM-protected web site for age-oauth's tests: the NTLM acceptor is pyspnego (an independent
implementation used by pywinrm and smbprotocol); this file does only the HTTP side, IIS-style.

  /protected        401 offering "Negotiate" and "NTLM" until the connection has authenticated
  /protected-ntlm   offers NTLM only
  /protected-negotiate  offers Negotiate only (pyspnego's acceptor takes NTLM inside it)
  /basic            401 offering only "Basic realm=..." (a site the web-tier provider cannot use)
  /portal/sharing/rest/generateToken   (POST, NTLM) an ArcGIS token for the signed-in user, as a
                    portal behind IWA gives one: no password in the form, the web tier says who it is
  /portal/sharing/rest/community/self  (NTLM + X-Esri-Authorization: Bearer <that token>) the user
  anything else     200 "public"

NTLM authenticates the connection (HTTP/1.1 keep-alive): the legs of one handshake share a connection,
later requests on it need no new handshake. Responses after sign-in carry X-Remote-User.
Env: NTLM_USERS (lines DOMAIN:USER:PASSWORD, read by pyspnego), PEER_DIR (the port is written to
$PEER_DIR/port), NTLM_PORT (default 0 = any free port). Listens on 127.0.0.1 only.
"""
import base64
import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import spnego
import spnego.exceptions

OFFERS = {
    "/protected": ("Negotiate", "NTLM"),
    "/protected-ntlm": ("NTLM",),
    "/protected-negotiate": ("Negotiate",),
    "/portal": ("Negotiate", "NTLM"),
}
TOKENS = {}  # ArcGIS token -> (user, expires epoch seconds)
TOKENS_LOCK = threading.Lock()


def offers_for(path):
    for prefix, schemes in OFFERS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return schemes
    return None


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "age-oauth-ntlm-peer/1"

    def setup(self):
        super().setup()
        self.acceptor = None
        self.acceptor_scheme = None
        self.user = None

    def log_message(self, fmt, *args):  # keep the log short: one line a request
        super().log_message(fmt, *args)

    def reply(self, status, body=b"", headers=(), content_type="text/plain"):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def challenge(self, schemes, why=b"authentication required\n"):
        self.acceptor = None
        self.reply(401, why, [("WWW-Authenticate", s) for s in schemes])

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.form = self.rfile.read(length) if length else b""
        self.handle_request()

    def do_GET(self):
        self.form = b""
        self.handle_request()

    def handle_request(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/basic":
            self.reply(401, b"basic only\n", [("WWW-Authenticate", 'Basic realm="intranet"')])
            return
        schemes = offers_for(path)
        if schemes is None:
            self.reply(200, b"public\n")
            return
        if not self.authenticate(schemes):
            return
        if path.startswith("/portal"):
            self.portal(path)
        else:
            self.reply(200, f"hello {self.user}\n".encode(), [("X-Remote-User", self.user)])

    def authenticate(self, schemes):
        """True when this connection is signed in; otherwise answers the next 401 itself."""
        header = self.headers.get("Authorization")
        if not header:
            if self.user:
                return True
            self.challenge(schemes)
            return False
        scheme, _, encoded = header.partition(" ")
        scheme = next((s for s in schemes if s.lower() == scheme.lower()), None)
        try:
            token = base64.b64decode(encoded.strip(), validate=True)
        except Exception:
            token = b""
        if scheme is None or not token:
            self.challenge(schemes, b"unsupported authorization\n")
            return False
        starts_handshake = token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00") or token[:1] == b"\x60"
        if self.acceptor is None or self.acceptor_scheme != scheme or starts_handshake:
            self.user = None
            self.acceptor = spnego.server(protocol="ntlm" if scheme == "NTLM" else "negotiate")
            self.acceptor_scheme = scheme
        try:
            answer = self.acceptor.step(token)
        except spnego.exceptions.SpnegoError as error:
            self.log_message("sign-in refused: %s", error)
            self.challenge(schemes, b"authentication failed\n")
            return False
        if not self.acceptor.complete:
            self.reply(401, b"", [("WWW-Authenticate", f"{scheme} {base64.b64encode(answer).decode()}")])
            return False
        self.user = self.acceptor.client_principal
        self.acceptor = None
        return True

    def portal(self, path):
        def arcgis(body):
            self.reply(200, json.dumps(body).encode(), [("X-Remote-User", self.user)], "application/json")

        if path == "/portal/sharing/rest/generateToken":
            if self.command != "POST":
                arcgis({"error": {"code": 400, "message": "Unable to generate token.", "details": ["POST only."]}})
                return
            form = dict(p.split("=", 1) for p in self.form.decode().split("&") if "=" in p)
            minutes = int(form.get("expiration", "60") or 60)
            token = "iwa_" + secrets.token_urlsafe(24)
            expires = int(time.time()) + 60 * minutes
            with TOKENS_LOCK:
                TOKENS[token] = (self.user, expires)
            arcgis({"token": token, "expires": expires * 1000, "ssl": False})
        elif path == "/portal/sharing/rest/community/self":
            bearer = self.headers.get("X-Esri-Authorization", "")
            token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
            with TOKENS_LOCK:
                owner = TOKENS.get(token) if token else None
            if token is None:
                arcgis({"error": {"code": 499, "message": "Token Required", "details": []}})
            elif owner is None or owner[0] != self.user or owner[1] <= time.time():
                arcgis({"error": {"code": 498, "message": "Invalid token.", "details": []}})
            else:
                arcgis({"username": self.user, "fullName": self.user})
        else:
            self.reply(404, b"not found\n")


def main():
    if not os.environ.get("NTLM_USERS"):
        raise SystemExit("NTLM_USERS must name a DOMAIN:USER:PASSWORD file")
    os.environ["NTLM_USER_FILE"] = os.environ["NTLM_USERS"]  # where pyspnego's acceptor reads them
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("NTLM_PORT", "0"))), Site)
    server.daemon_threads = True
    port_file = os.path.join(os.environ.get("PEER_DIR", "."), "port")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
