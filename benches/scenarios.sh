#!/usr/bin/env bash
# Benchmarks of whole scenarios (login, concurrent refresh) against the sandbox; see docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
python3 benches/scenarios.py target/release/age-oauth
