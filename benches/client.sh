#!/usr/bin/env bash
# Benchmark (not a test): loopback requests through age_oauth::Client and (feature `reqwest`) AsyncClient,
# each against its bare HTTP client (ureq, reqwest) sending a fixed Authorization header, alternating
# request by request; a control pair (bare against bare) shows the noise floor. Prints the median
# request and the overhead; the target is under 5 %.
# Usage: bash benches/client.sh [REQUESTS] [REPEATS]   (default 1000 requests per variant, 5 repeats).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked --quiet --features reqwest --example client_bench -- "${1:-1000}" "${2:-5}"
