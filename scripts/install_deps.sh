#!/usr/bin/env bash
# Installs what the test suite needs on a bare Debian machine with only Rust: GDAL's command
# line tools (the COG tests' oracle), Python with venv (the rio-tiler references), Node.js and
# npm (MapLibre for the viewer, playwright-core for its test) and Chromium (the viewer test).
# Only what is missing is installed; as root directly, otherwise through sudo when there is
# one. Run by scripts/test.sh (the README's test command) and .ci/run.
set -euo pipefail

need=()
command -v gdalinfo >/dev/null 2>&1 || need+=(gdal-bin)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ "${#need[@]}" -gt 0 ] || exit 0

echo "installing Debian packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "error: the tests need these Debian packages: ${need[*]}" >&2
  echo "       install them as root: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
