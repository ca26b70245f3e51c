#!/usr/bin/env bash
# Creates or refreshes .tools/infra/, the environment of checkov and aws-sam-translator, from
# infra/tools/requirements.lock (hashes checked). Apart from .venv because checkov pins boto3,
# packaging and networkx below the project's. Needs .venv's uv (scripts/venv.sh first).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
lock=infra/tools/requirements.lock
tools=.tools/infra
stamp="$tools/.lock.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$tools"
    UV_PYTHON_DOWNLOADS=never .venv/bin/uv venv --quiet --python .venv/bin/python "$tools"
    UV_PYTHON_DOWNLOADS=never .venv/bin/uv pip install --quiet --require-hashes \
        --python "$tools/bin/python" -r "$lock"
    echo "$want" > "$stamp"
fi
