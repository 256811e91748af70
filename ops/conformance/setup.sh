#!/usr/bin/env bash
# Prepare the independent CalDAV suites in their own virtualenv (default
# /tmp/parley-conformance, or $PARLEY_CONFORMANCE_HOME), apart from the project's
# venv: their test extras (pytest-asyncio, pyfakefs, ...) must not change how the
# project's own pytest runs. The servers under test keep running from the project's venv.
#   - caldav's functional suite and vdirsyncer's storage suite: from their sdists
#   - caldav-server-tester: from PyPI
#   - litmus: from Debian (apt-get), when run as root
set -euo pipefail

HOME_DIR="${PARLEY_CONFORMANCE_HOME:-/tmp/parley-conformance}"
PROJECT_PY="${PARLEY_PYTHON:-/work/venv/bin/python}"
CALDAV_VERSION="$("$PROJECT_PY" -c 'import importlib.metadata as m; print(m.version("caldav"))')"
VDIRSYNCER_VERSION="0.21.0"

mkdir -p "$HOME_DIR/src"
if [ ! -x "$HOME_DIR/venv/bin/python" ]; then
    BASE_PY="$("$PROJECT_PY" -c 'import sys; print(sys._base_executable)')"
    "$BASE_PY" -m venv "$HOME_DIR/venv"
fi
PIP="$HOME_DIR/venv/bin/pip"

cd "$HOME_DIR/src"
"$PIP" download -q --no-binary :all: --no-deps "caldav==$CALDAV_VERSION" "vdirsyncer==$VDIRSYNCER_VERSION"
tar xzf "caldav-$CALDAV_VERSION.tar.gz"
tar xzf "vdirsyncer-$VDIRSYNCER_VERSION.tar.gz"
ln -sfn "caldav-$CALDAV_VERSION" caldav
ln -sfn "vdirsyncer-$VDIRSYNCER_VERSION" vdirsyncer

# The clients under their own test extras (as their sdists declare them), plus the tester.
"$PIP" install -q "./caldav-$CALDAV_VERSION[test]" "./vdirsyncer-$VDIRSYNCER_VERSION" \
    pytest-asyncio pytest-httpserver trustme aioresponses "hypothesis<7" caldav-server-tester

if ! command -v litmus >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq litmus
fi
echo "conformance suites ready in $HOME_DIR"
