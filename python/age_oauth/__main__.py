"""`python -m age_oauth ARGS`: runs the age-oauth executable with ARGS."""

from __future__ import annotations

import os
import subprocess
import sys

from ._bin import find_age_oauth_bin
from ._errors import Error


def _run() -> int:
    try:
        path = find_age_oauth_bin()
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if sys.platform == "win32":
        return subprocess.run([path, *sys.argv[1:]]).returncode
    os.execv(path, [path, *sys.argv[1:]])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(_run())
