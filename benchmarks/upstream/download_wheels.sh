#!/usr/bin/env bash
# Fill a folder with the wheels of requirements.txt, for an offline setup_env.sh --wheels DIR.
#
#   download_wheels.sh DIR [--python PY]
#
# PY (default: python3) must be the same Python version and platform as the machine that will
# install from DIR: the few binary wheels (pyyaml, lmdb, charset-normalizer) are picked for it.
# basicsr is sdist-only on PyPI, so its wheel is built here (pure Python, no extensions).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="" py="python3"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) py="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) dir="$1"; shift ;;
  esac
done
[[ -n "$dir" ]] || { echo "usage: $0 DIR [--python PY]" >&2; exit 2; }
mkdir -p "$dir"

# A throwaway venv of PY gives a pip that picks wheels for PY (PY itself may have no pip, as in
# a uv-made venv).
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" -m venv "$tmp/venv"
# basicsr's setup.py lists torch in setup_requires: with PY's packages on the throwaway venv's
# path (a .pth, as setup_env.sh does) setuptools finds the installed torch instead of fetching
# torch and its CUDA wheels as eggs, which fails on their pinned versions.
"$py" -c 'import sysconfig; p = sysconfig.get_paths(); print(*dict.fromkeys([p["purelib"], p["platlib"]]), sep="\n")' \
  > "$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_base_site.pth"
pip=("$tmp/venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install wheel                      # setuptools' bdist_wheel for basicsr's build

grep -v '^basicsr' "$here/requirements.txt" > "$tmp/binary.txt"
"${pip[@]}" download --no-deps --only-binary=:all: -d "$dir" -r "$tmp/binary.txt"
# No build isolation: basicsr's setup_requires names torch, which an isolated build would fetch.
"${pip[@]}" wheel --no-deps --no-build-isolation -w "$dir" "$(grep '^basicsr' "$here/requirements.txt" | cut -d' ' -f1)"
ls -1 "$dir"
