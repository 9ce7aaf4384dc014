#!/usr/bin/env python3
"""Stdlib-only helpers for tests/peers/saml/prove.sh (curl does all the HTTP; this builds and reads).

  samltool.py request SSO_URL SP_ENTITY_ID ACS_URL RELAY_STATE OUT_ID_FILE
      prints the SP-initiated HTTP-Redirect URL (AuthnRequest: deflate + base64 + urlencode) and writes
      the request ID to OUT_ID_FILE
  samltool.py form HTML_FILE BASE_URL
      prints the page's first <form> as shell-safe KEY=VALUE lines: FORM_ACTION (resolved, entities
      undone), FORM_FIELDS (the input names, space separated) and FIELD_<name> for each hidden input
  samltool.py acs PORT_FILE RECORD_FILE
      a one-endpoint SP: POST /acs is written (form-decoded, as JSON) to RECORD_FILE, answers 200;
      binds 127.0.0.1 on a free port, written to PORT_FILE
  samltool.py fields RESPONSE_XML
      prints what the proof checks as KEY=VALUE lines: RESPONSE_ID, ASSERTION_ID, IN_RESPONSE_TO,
      DESTINATION, ISSUER, NAME_ID, AUDIENCE, STATUS, RESPONSE_REF, ASSERTION_REF (the signatures'
      Reference URIs), RECIPIENT
"""

import base64
import datetime
import html.parser
import http.server
import json
import secrets
import shlex
import sys
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def request(sso_url, sp_entity_id, acs_url, relay_state, id_file):
    request_id = "_" + secrets.token_hex(16)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    xml = (
        f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" '
        f'ID="{request_id}" Version="2.0" IssueInstant="{now}" '
        f'Destination="{escape(sso_url)}" AssertionConsumerServiceURL="{escape(acs_url)}" '
        'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{escape(sp_entity_id)}</saml:Issuer>"
        '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    )
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw DEFLATE, as the Redirect binding says
    encoded = base64.b64encode(deflater.compress(xml.encode()) + deflater.flush()).decode()
    query = urllib.parse.urlencode({"SAMLRequest": encoded, "RelayState": relay_state})
    with open(id_file, "w") as f:
        f.write(request_id)
    print(f"{sso_url}?{query}")


def escape(value):
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


class FirstForm(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.action, self.inputs, self.in_form, self.done = None, [], False, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and not self.done and self.action is None:
            self.action, self.in_form = attrs.get("action") or "", True
        elif tag == "input" and self.in_form and attrs.get("name"):
            self.inputs.append((attrs["name"], attrs.get("type", "text"), attrs.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form, self.done = False, True


def form(html_file, base_url):
    parser = FirstForm()
    parser.feed(open(html_file, encoding="utf-8", errors="replace").read())
    if parser.action is None:
        print("FORM_ACTION=''")
        print("FORM_FIELDS=''")
        return
    print(f"FORM_ACTION={shlex.quote(urllib.parse.urljoin(base_url, parser.action))}")
    print(f"FORM_FIELDS={shlex.quote(' '.join(name for name, _, _ in parser.inputs))}")
    for name, kind, value in parser.inputs:
        if kind == "hidden" and name.isidentifier():
            print(f"FIELD_{name}={shlex.quote(value)}")


def acs(port_file, record_file):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            fields = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            with open(record_file, "w") as f:
                json.dump({"path": self.path, "fields": fields}, f)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"recorded\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


def fields(response_xml):
    root = ET.parse(response_xml).getroot()
    assertion = root.find("saml:Assertion", NS)

    def text(node, path):
        found = node.find(path, NS) if node is not None else None
        return (found.text or "").strip() if found is not None else ""

    def attr(node, path, name):
        found = node.find(path, NS) if node is not None else None
        return found.get(name, "") if found is not None else ""

    out = {
        "RESPONSE_ID": root.get("ID", ""),
        "IN_RESPONSE_TO": root.get("InResponseTo", ""),
        "DESTINATION": root.get("Destination", ""),
        "ISSUER": text(root, "saml:Issuer"),
        "STATUS": attr(root, "samlp:Status/samlp:StatusCode", "Value"),
        "RESPONSE_REF": attr(root, "ds:Signature/ds:SignedInfo/ds:Reference", "URI"),
        "ASSERTION_ID": assertion.get("ID", "") if assertion is not None else "",
        "ASSERTION_REF": attr(assertion, "ds:Signature/ds:SignedInfo/ds:Reference", "URI"),
        "NAME_ID": text(assertion, "saml:Subject/saml:NameID"),
        "RECIPIENT": attr(assertion, "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "Recipient"),
        "AUDIENCE": text(assertion, "saml:Conditions/saml:AudienceRestriction/saml:Audience"),
    }
    for key, value in out.items():
        print(f"{key}={shlex.quote(value)}")


if __name__ == "__main__":
    commands = {"request": request, "form": form, "acs": acs, "fields": fields}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
