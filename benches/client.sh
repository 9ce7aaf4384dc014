#!/usr/bin/env bash
# Benchmark (not a test): 1,000 loopback requests through age_oauth::Client and (feature `reqwest`)
# AsyncClient, each against its bare HTTP client (ureq, reqwest) sending a fixed Authorization header.
# Prints µs per request and the overhead; the target is under 5 %.
# Usage: bash benches/client.sh [REQUESTS] [ROUNDS]   (default 1000 in 50 alternating rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked --quiet --features reqwest --example client_bench -- "${1:-1000}" "${2:-50}"
