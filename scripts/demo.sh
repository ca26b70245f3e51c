#!/usr/bin/env bash
# The README's main command: the whole local stack (moto, the Lambda runtime, the live feed,
# Dagster), loaded with reference data and history, until Ctrl-C. Flags go to `supermarket up`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh
exec .venv/bin/supermarket up "$@"
