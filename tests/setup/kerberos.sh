#!/usr/bin/env bash
# Installs what tests/peers/kerberos needs: an MIT KDC (+ kadmin.local), kinit, Apache with mod_auth_gssapi.
# Idempotent; nothing is configured system-wide (the peer scripts keep everything in a work dir).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
apt_install krb5-kdc krb5-admin-server krb5-user apache2 libapache2-mod-auth-gssapi
