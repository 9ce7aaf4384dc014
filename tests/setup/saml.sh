#!/usr/bin/env bash
# Installs what tests/peers/saml needs: SimpleSAMLphp (Debian bookworm's 1.19.7, a real SAML 2.0 IdP)
# with the PHP extensions it uses, PHP's built-in web server (php-cli) to serve it, xmlsec1 to verify
# the IdP's XML signatures, and openssl for the throw-away signing certificate.
# Idempotent; nothing is configured system-wide (tests/peers/saml/start.sh keeps everything in a work
# dir and points SimpleSAMLphp at it with SIMPLESAMLPHP_CONFIG_DIR). Starts no daemon.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# php8.2-cgi first: it satisfies php8.2's "mod-php | fpm | cgi" dependency, so no Apache module is pulled in
# (libapache2-mod-php8.2 would switch the system Apache to mpm_prefork and enable itself).
apt_install php8.2-cgi simplesamlphp php-cli php8.2-xml php8.2-mbstring php8.2-curl xmlsec1 openssl python3 curl
