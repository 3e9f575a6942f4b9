"""Running a scenario on a real SoftHSM2 in its own process: SoftHSM2 reads its
configuration once per process, so each scenario gets a fresh interpreter and its own token
directory under ``tmp_path``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from strongroom.keystores import softhsm

needs_softhsm = pytest.mark.skipif(
    not any(p.is_file() for p in softhsm.MODULE_PATHS), reason="SoftHSM2 is not installed"
)


def run_scenario(prelude: str, tmp_path: Path, body: str) -> str:
    """``prelude`` (formatted with ``data`` = ``tmp_path``) then ``body`` in a new Python
    process; its standard output, after asserting it exited 0."""
    code = prelude.format(data=str(tmp_path)) + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
