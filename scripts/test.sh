#!/usr/bin/env bash
# The README's test command: lint, format check, then the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh
# The dashboard's browser tests drive Debian's chromium (Playwright never downloads its own);
# CI runs this as root on a clean machine.
# The production Dagster profile is tested against a real PostgreSQL server that the test
# starts itself from Debian's postgresql (its initdb and pg_ctl; never the package's own cluster).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# checkov and aws-sam-translator, in their own environment (.tools/infra) from their own lock.
bash scripts/tools.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ "$#" -gt 0 ]; then
    exec .venv/bin/pytest "$@"
fi
# The suite waits on servers and subprocesses more than it computes: two workers, one per core.
# Then the tests marked `alone` (a wall-clock bound of the whole stack) with nothing beside them.
status=0
.venv/bin/pytest -n 2 -m "not alone" || status=$?
.venv/bin/pytest -m alone || status=$?
exit "$status"
