#!/usr/bin/env bash
# Install the appliance runtime.
#
#   ./install.sh --dev     development checkout: a local .venv with the package
#                          installed editable and the test tools (pytest, ...)
#
# The device install (venv under /opt, systemd units, config under /etc, staging
# into an image root) comes with the device life-cycle work.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: ./install.sh --dev [--python PYTHON]

  --dev            create ./.venv, install appliance editable with its test extras
  --python PYTHON  interpreter to build the venv from (default: python3, must be >= 3.8)
  -h, --help       show this help

examples:
  ./install.sh --dev && .venv/bin/appliance demo
  ./install.sh --dev && .venv/bin/python -m pytest
USAGE
}

mode=""
python="python3"
while [ $# -gt 0 ]; do
    case "$1" in
        --dev) mode="dev" ;;
        --python) shift; python="${1:?--python needs a value}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$mode" ] || { usage >&2; exit 2; }

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

command -v "$python" >/dev/null 2>&1 || { echo "install.sh: '$python' not found; install python3 (>= 3.8)" >&2; exit 1; }
"$python" - <<'PY' || { echo "install.sh: appliance needs Python >= 3.8" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 8) else 1)
PY

make_venv() {
    "$python" -m venv "$1" 2>/dev/null && [ -x "$1/bin/pip" ]
}

if [ ! -x .venv/bin/python ]; then
    rm -rf .venv
    if ! make_venv .venv; then
        # Debian and Ubuntu ship venv as a separate package.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            ver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
            apt-get update -qq && { apt-get install -y -qq "python${ver}-venv" || apt-get install -y -qq python3-venv; }
            rm -rf .venv
            make_venv .venv
        else
            echo "install.sh: '$python -m venv' failed; install the python3-venv package" >&2
            exit 1
        fi
    fi
fi

.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q -e ".[dev]"
echo "appliance installed in $here/.venv ($(.venv/bin/python --version))"
