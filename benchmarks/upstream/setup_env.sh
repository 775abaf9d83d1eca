#!/usr/bin/env bash
# Make the virtual environment that runs upstream_loop.py: basicsr, realesrgan, gfpgan and
# facexlib from PyPI, on top of the torch/torchvision (and numpy, opencv, ...) of a base Python.
#
#   setup_env.sh [VENV] [--python PY] [--wheels DIR]
#
# VENV   where to make it (default: benchmarks/.upstream-venv under the repo root)
# PY     the base Python whose packages are reused (default: the repo's .venv/bin/python)
# DIR    install offline from this folder of wheels (see download_wheels.sh); without it the
#        wheels are fetched from PyPI first.
#
# The base's site-packages are put on the new venv's path by a .pth file, after the venv's own
# site-packages, so the packages installed here (all with --no-deps) take precedence and nothing
# of the base is copied or changed. A second .pth loads functional_tensor_shim.py, which makes
# basicsr's `torchvision.transforms.functional_tensor` import work on current torchvision.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.upstream-venv" py="$root/.venv/bin/python" wheels=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python) py="$2"; shift 2 ;;
    --wheels) wheels="$(cd "$2" && pwd)"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) venv="$1"; shift ;;
  esac
done

"$py" -c 'import torch, torchvision' || { echo "$py has no torch/torchvision" >&2; exit 1; }
base_sites="$("$py" -c 'import sysconfig; p = sysconfig.get_paths(); print(*dict.fromkeys([p["purelib"], p["platlib"]]), sep="\n")')"

"$py" -m venv --clear "$venv"
vpy="$venv/bin/python"
site="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n' "$base_sites" > "$site/_upstream_base_site.pth"
cp "$here/functional_tensor_shim.py" "$site/"
echo 'import functional_tensor_shim' > "$site/functional_tensor_shim.pth"

if [[ -z "$wheels" ]]; then
  wheels="$(mktemp -d)"; trap 'rm -rf "$wheels"' EXIT
  "$here/download_wheels.sh" "$wheels" --python "$py" >/dev/null
fi
# --ignore-installed: the base may already have some of these (facefix's venv has facexlib);
# the venv gets its own copies so the upstream stack is exactly requirements.txt.
"$vpy" -m pip --disable-pip-version-check -q install --no-index --find-links "$wheels" \
  --no-deps --ignore-installed -r "$here/requirements.txt"

"$vpy" - <<'PY'
import importlib.metadata as md
import basicsr, facexlib, gfpgan, realesrgan, torch, torchvision, numpy, cv2  # noqa: F401
for name in ("basicsr", "realesrgan", "gfpgan", "facexlib", "torch", "torchvision", "numpy",
             "opencv-python", "scipy", "pillow"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: (not found)")
PY
echo "upstream venv ready: $vpy"
