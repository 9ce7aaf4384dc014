#!/usr/bin/env bash
# The reference `age` command-line tool: tests prove that our exports are standard age files.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v age >/dev/null || apt_install age
