#!/usr/bin/env bash
# Proves tests/peers/saml/start.sh gives what the okta-esri `idp = "form"` tests (issue 10) rely on:
# a dummy SP (samltool.py acs: records what its ACS receives) and an SP-initiated login driven with
# curl alone — AuthnRequest over HTTP-Redirect (python stdlib: deflate + base64 + urlencode), the
# real login form (a wrong password gets the form again), username/password posted, the auto-submit
# form posted to the ACS — then checks the SAMLResponse the ACS received: both XML signatures (Response
# and Assertion) verify with xmlsec1 against the IdP certificate and each covers its own element, a
# tampered copy and a foreign certificate fail, NameID is alice, InResponseTo/Destination/Audience/
# Issuer/RelayState are the request's; and a second request with the same cookies is answered at once
# (IdP session reuse). Exit 0 only if every check holds. Needs tests/setup/saml.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d /tmp/age-oauth-saml-prove-XXXXXX)"
IDP_DIR="$WORK/idp"
ACS_PID=""
cleanup() { [[ -n "$ACS_PID" ]] && kill "$ACS_PID" 2>/dev/null; "$HERE/stop.sh" --dir "$IDP_DIR" --purge; rm -rf "$WORK"; }
trap cleanup EXIT
TOOL=(python3 "$HERE/samltool.py")
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
failed=0
check() { # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: expected $2, got $3"; failed=$((failed + 1)); fi
}

# The dummy SP's ACS.
"${TOOL[@]}" acs "$WORK/acs.port" "$WORK/acs.json" &
ACS_PID=$!
for _ in $(seq 50); do [[ -s "$WORK/acs.port" ]] && break; sleep 0.1; done
ACS_URL="http://127.0.0.1:$(cat "$WORK/acs.port")/acs"
SP_ENTITY_ID="http://127.0.0.1:$(cat "$WORK/acs.port")/sp"

t0=$(now)
WATCH_PID=$$ "$HERE/start.sh" --dir "$IDP_DIR" --sp-entity-id "$SP_ENTITY_ID" --acs-url "$ACS_URL" >"$WORK/start.out"
t1=$(now)
source "$IDP_DIR/env"
JAR="$WORK/cookies"
RELAY="relay-$RANDOM-$RANDOM"

# 1. SP-initiated: GET the SSO URL with the request, follow to the login form.
url="$("${TOOL[@]}" request "$SAML_SSO_URL" "$SP_ENTITY_ID" "$ACS_URL" "$RELAY" "$WORK/request.id")"
t2=$(now)
read -r code login_url < <(curl -sS -L -c "$JAR" -b "$JAR" -o "$WORK/login.html" -w '%{http_code} %{url_effective}\n' "$url")
check "SSO redirect leads to the login form (200)" 200 "$code"
eval "$("${TOOL[@]}" form "$WORK/login.html" "$login_url")"
check "  -> form fields" "username password AuthState" "$(tr ' ' '\n' <<<"$FORM_FIELDS" | grep -xE 'username|password|AuthState' | paste -sd' ')"
state="${FIELD_AuthState:-}"
action="$FORM_ACTION"

# 2. A wrong password: the same form again, no SAMLResponse.
curl -sS -L -c "$JAR" -b "$JAR" -o "$WORK/wrong.html" --data-urlencode username=alice \
  --data-urlencode password=not-the-password --data-urlencode "AuthState=$state" "$action"
eval "$("${TOOL[@]}" form "$WORK/wrong.html" "$action")"
check "wrong password: the login form again" yes "$(grep -qw password <<<"$FORM_FIELDS" && ! grep -q SAMLResponse "$WORK/wrong.html" && echo yes || echo no)"

# 3. The right password: the auto-submit form for the SP.
curl -sS -L -c "$JAR" -b "$JAR" -o "$WORK/post.html" --data-urlencode "username=$SAML_USERNAME" \
  --data-urlencode "password=$SAML_PASSWORD" --data-urlencode "AuthState=${FIELD_AuthState:-$state}" "$action"
unset FIELD_SAMLResponse FIELD_RelayState
eval "$("${TOOL[@]}" form "$WORK/post.html" "$action")"
check "login: auto-submit form with SAMLResponse" yes "$([[ -n "${FIELD_SAMLResponse:-}" ]] && echo yes || echo no)"
check "  -> action is the SP's ACS" "$ACS_URL" "$FORM_ACTION"
check "  -> RelayState verbatim" "$RELAY" "${FIELD_RelayState:-}"
# The browser's auto-submit: POST it to the ACS, which records it.
printf '%s' "${FIELD_SAMLResponse:-}" >"$WORK/samlresponse.b64"
curl -sS -o /dev/null --data-urlencode "SAMLResponse@$WORK/samlresponse.b64" \
  --data-urlencode "RelayState=${FIELD_RelayState:-}" "$FORM_ACTION"
t3=$(now)
python3 -c "import json,base64,sys; d=json.load(open(sys.argv[1]))['fields']; sys.stdout.buffer.write(base64.b64decode(d['SAMLResponse']))" \
  "$WORK/acs.json" >"$WORK/response.xml"

# 4. Signatures (xmlsec1 against the IdP's certificate), each on its own element.
RESPONSE_SIG="/*[local-name()='Response']/*[local-name()='Signature']"
ASSERTION_SIG="/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']"
verify() { # verify CERT XPATH FILE
  xmlsec1 --verify --pubkey-cert-pem "$1" \
    --id-attr:ID urn:oasis:names:tc:SAML:2.0:protocol:Response \
    --id-attr:ID urn:oasis:names:tc:SAML:2.0:assertion:Assertion \
    --node-xpath "$2" "$3" >>"$WORK/xmlsec.log" 2>&1 && echo verified || echo rejected
}
check "Response signature verifies" verified "$(verify "$SAML_IDP_CERT" "$RESPONSE_SIG" "$WORK/response.xml")"
check "Assertion signature verifies" verified "$(verify "$SAML_IDP_CERT" "$ASSERTION_SIG" "$WORK/response.xml")"
eval "$("${TOOL[@]}" fields "$WORK/response.xml")"
check "  -> Response signature covers the Response" "#$RESPONSE_ID" "$RESPONSE_REF"
check "  -> Assertion signature covers the Assertion" "#$ASSERTION_ID" "$ASSERTION_REF"
sed 's#>alice</saml:NameID>#>mallory</saml:NameID>#' "$WORK/response.xml" >"$WORK/tampered.xml"
check "tampered NameID: changed" yes "$(grep -q '>mallory<' "$WORK/tampered.xml" && echo yes || echo no)"
check "tampered NameID: Response signature fails" rejected "$(verify "$SAML_IDP_CERT" "$RESPONSE_SIG" "$WORK/tampered.xml")"
check "tampered NameID: Assertion signature fails" rejected "$(verify "$SAML_IDP_CERT" "$ASSERTION_SIG" "$WORK/tampered.xml")"
openssl req -x509 -newkey rsa:2048 -nodes -subj '/CN=someone else' -keyout "$WORK/other.key" -out "$WORK/other.crt" -days 1 2>/dev/null
check "another certificate: rejected" rejected "$(verify "$WORK/other.crt" "$RESPONSE_SIG" "$WORK/response.xml")"

# 5. What the SP checks.
check "Status Success" urn:oasis:names:tc:SAML:2.0:status:Success "$STATUS"
check "NameID" alice "$NAME_ID"
check "InResponseTo = the request's ID" "$(cat "$WORK/request.id")" "$IN_RESPONSE_TO"
check "Destination = ACS" "$ACS_URL" "$DESTINATION"
check "Recipient = ACS" "$ACS_URL" "$RECIPIENT"
check "Audience = SP entity ID" "$SP_ENTITY_ID" "$AUDIENCE"
check "Issuer = IdP entity ID" "$SAML_IDP_ENTITY_ID" "$ISSUER"
check "ACS received the RelayState" "$RELAY" "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['fields'].get('RelayState',''))" "$WORK/acs.json")"

# 6. IdP session reuse: a new request with the same cookies is answered with no login form.
url="$("${TOOL[@]}" request "$SAML_SSO_URL" "$SP_ENTITY_ID" "$ACS_URL" "again" "$WORK/request2.id")"
curl -sS -L -c "$JAR" -b "$JAR" -o "$WORK/again.html" "$url"
unset FIELD_SAMLResponse
eval "$("${TOOL[@]}" form "$WORK/again.html" "$SAML_SSO_URL")"
check "same cookies: SAMLResponse at once" yes "$([[ -n "${FIELD_SAMLResponse:-}" ]] && echo yes || echo no)"

echo "timings: IdP start $(secs "$t0" "$t1") s, SP-initiated login (3 GETs/POSTs + ACS post) $(secs "$t2" "$t3") s"
if [[ $failed -eq 0 ]]; then echo "saml proof: all checks passed"; else
  echo "saml proof: $failed check(s) FAILED (xmlsec1 output: see below)"; tail -20 "$WORK/xmlsec.log"; exit 1; fi
