#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need, builds, runs every test.
# Used by README.md and .ci/run; safe to run again (installs are skipped when present).
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust toolchain: the machine's own (rustup). The ArcGIS, Okta and Anaconda servers are our
# simulators inside the test binaries; the real independent servers (OpenID Connect, Kerberos,
# NTLM) are installed by tests/setup/*.sh and started by the tests through tests/peers/*.
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
export AGE_OAUTH_SETUP_STAMP
AGE_OAUTH_SETUP_STAMP=$(mktemp -u /tmp/age-oauth-apt-XXXXXX)
for setup in tests/setup/*.sh; do
  [ "$(basename "$setup")" = lib.sh ] && continue
  [ -e "$setup" ] || continue
  # "# run-all: on demand" in a set-up's header: a real server no test uses yet (its cost is in the
  # header); installed only with AGE_OAUTH_SETUP_ALL=1. The issue whose tests need it deletes that line.
  if grep -q '^# run-all: on demand' "$setup" && [ "${AGE_OAUTH_SETUP_ALL:-}" != 1 ]; then
    echo "set-up: $setup skipped (on demand: AGE_OAUTH_SETUP_ALL=1 installs it)" >&2; continue
  fi
  echo "set-up: $setup" >&2
  bash "$setup"
done

export CARGO_TERM_COLOR=never
# Every package of the lock file, for every target: `cargo metadata --offline` (maturin's wheel build in
# tests/python) needs the wasm-only ones too (jsonwebtoken's js-sys), which `cargo build` does not fetch.
cargo fetch --locked
cargo build --locked --all-targets
# The optional OS-keyring backend must keep compiling (its logic is tested with a fake keyring).
cargo check --locked --features keyring --lib
# Without the simulators (the default `sandbox` feature) the library and the binary still build.
cargo check --locked --no-default-features
# Lints (Cargo.toml [lints], src/lib.rs) and the API docs: warnings are errors.
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --locked --no-deps
set +e
cargo test --locked --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
# issue 11: the `reqwest` feature is off by default: neither the default build nor --no-default-features
# may pull reqwest or tokio. The tests see it on (Cargo.toml's dev-dependency on this crate), so the
# AsyncClient's tests under tokio ran above, in the one build of tests/it.
for features in "" "--no-default-features"; do
  if cargo tree --locked -e normal $features | grep -qE ' (reqwest|tokio) v'; then
    echo "the build with features '$features' pulls reqwest or tokio" >&2; status=1
  fi
done
# The Python package (python/age_oauth): pytest with the real requests, httpx and arcgis against the
# HTTPS sandbox, and the wheel built by maturin (tests/setup/python.sh installed them).
AGE_OAUTH_TEST_BIN="$PWD/target/debug/age-oauth" tests/python/.venv/bin/python -m pytest tests/python -q \
  -p no:cacheprovider --junitxml=target/pytest.xml 2>&1 | tee target/pytest-output.txt
py_status=${PIPESTATUS[0]}
set -e
# One closing line for CI: sum what every test binary (the unit tests, tests/it, the doc tests) and
# pytest reported.
python3 - "$py_status" <<'PY'
import re
import sys
import xml.etree.ElementTree as ET

passed = failed = ignored = 0
for line in open("target/test-output.txt"):
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", line)
    if m:
        passed += int(m[1]); failed += int(m[2]); ignored += int(m[3])
py_status = int(sys.argv[1])
py_failed = 0
try:
    root = ET.parse("target/pytest.xml").getroot()
    for suite in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        total, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        broken = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        passed += total - skipped - broken
        py_failed += broken
        ignored += skipped
except (OSError, ET.ParseError):
    pass
# pytest: 1 = some test failed; 5 = no test collected, 2-4 = interrupted / internal / usage error:
# never a silent pass.
if py_status != 0 and py_failed == 0:
    print(f"pytest exited with code {py_status} (see target/pytest-output.txt): counted as one failure", file=sys.stderr)
    py_failed = 1
failed += py_failed
print(f"{passed} passed, {failed} failed, {ignored} skipped")
raise SystemExit(1 if failed or passed == 0 else 0)
PY
[ "$status" -eq 0 ] && [ "$py_status" -eq 0 ]
