#!/usr/bin/env bash
# Install everything Parley's tests need, then run lint, types and the whole test suite.
# Usage: bash scripts/test.sh [pytest args…]
# Env: PARLEY_TEST_DATABASE_URL (PostgreSQL base URL; found automatically on 127.0.0.1:5432),
#      VENV (default .venv), FRESH=1 (recreate the venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: missing Debian packages (tests needing them will skip): ${missing[*]}" >&2
  fi
}
# Real peers the end-to-end tests drive: IMAP server, MTA, browser, WebDAV suite; promtool
# (Debian's prometheus package) for the alert and recording rule tests.
apt_install postgresql-client dovecot-imapd postfix chromium chromium-driver litmus prometheus libical3

if [ "${FRESH:-0}" = 1 ]; then rm -rf "$VENV"; fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -e ".[test]"

if [ -f tests/unit/mailagent/js/package.json ] && command -v npm >/dev/null; then
  (cd tests/unit/mailagent/js && npm ci --silent --no-audit --no-fund >/dev/null) || echo "note: npm install failed; ical.js checks will skip" >&2
fi

# The independent CalDAV suites live in a venv of their own (see ops/conformance/setup.sh).
venv_python="$(cd "$VENV" && pwd)/bin/python"
PARLEY_PYTHON="$venv_python" bash ops/conformance/setup.sh >/dev/null 2>&1 \
  || echo "note: CalDAV conformance suites could not be prepared; their test will skip" >&2

created_db=""
if [ -z "${PARLEY_TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null \
   && pg_isready -q -h 127.0.0.1 -p 5432; then
  created_db="parley_test_$(date +%s)_$$"
  createdb -h 127.0.0.1 -U postgres "$created_db"
  export PARLEY_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/$created_db"
fi
cleanup() { [ -n "$created_db" ] && dropdb -h 127.0.0.1 -U postgres --if-exists --force "$created_db" || true; }
trap cleanup EXIT

echo "== ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== mypy core web"
"$VENV/bin/mypy" core web
echo "== alembic check (models vs migrations)"
check_db=$(mktemp -d)/check.db
PARLEY_DATABASE_URL="sqlite:///$check_db" "$VENV/bin/python" -c "from core.db.migrate import upgrade, check; import sys; u=sys.argv[1]; upgrade(u); check(u)" "sqlite:///$check_db"
echo "== pytest (PostgreSQL: ${PARLEY_TEST_DATABASE_URL:-not configured})"
"$VENV/bin/python" -m pytest "$@"
