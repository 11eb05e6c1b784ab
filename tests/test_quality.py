"""The code stays on Python 3.8 (JetPack 5) and lint-clean."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCT = [d for d in ("appliance", "firmware_bridge") if os.path.isdir(os.path.join(ROOT, d))]


def _tool(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        path = shutil.which(name)
    if path is None:
        pytest.fail("%s is not installed: ./install.sh --dev installs it" % name)
    return path


def test_product_code_runs_on_python_3_8():
    done = subprocess.run([_tool("vermin"), "-q", "--no-tips", "--violations", "-t=3.8-", *PRODUCT],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "" and done.returncode == 0, done.stdout + done.stderr


def test_ruff_finds_nothing():
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", *PRODUCT, "tests", "bench", "examples"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
