"""A plain (not editable) install of the package works on its own, examples included."""
import glob
import os
import site
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(argv, **kwargs):
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=240, **kwargs)
    assert done.returncode == 0, "%s failed:\n%s%s" % (argv, done.stdout, done.stderr)
    return done


@pytest.mark.timeout(300)
def test_a_wheel_installed_in_a_fresh_venv_runs_the_demo_from_anywhere(tmp_path):
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
          tmp_path / "wheels", ROOT])
    [wheel] = glob.glob(str(tmp_path / "wheels" / "appliance-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel])
    # Its dependencies come from this environment's site-packages (no network here); the
    # package itself only from the wheel (a path entry runs no .pth file: no editable hook).
    [target] = glob.glob(str(venv / "lib" / "python*" / "site-packages"))
    with open(os.path.join(target, "dependencies.pth"), "w") as pth:
        pth.write("\n".join(site.getsitepackages()) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _run([venv / "bin" / "appliance", "demo", "--simulated"], cwd=str(elsewhere))
    assert "met the deadline" in done.stdout
    where = _run([venv / "bin" / "python", "-c", "import appliance, os; print(os.path.dirname(appliance.__file__))"],
                 cwd=str(elsewhere))
    assert where.stdout.strip().startswith(str(venv))  # the installed copy ran, not the checkout
    assert os.path.isfile(venv / "share" / "appliance" / "examples" / "camera_fusion.py")
