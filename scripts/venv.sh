#!/usr/bin/env bash
# Creates or refreshes the project-local .venv from uv.lock; needs only python3.
# Sourced by the README's two commands, so nothing installed by hand is assumed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
uv_version="0.13.8" # keep equal to the uv pin in pyproject.toml's dev group
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$uv_version" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi
# Re-sync only when the lock changed since the last successful sync.
stamp=.venv/.uv-lock.sha256
want="$(sha256sum uv.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    UV_PYTHON_DOWNLOADS=never .venv/bin/uv sync --frozen --quiet --python .venv/bin/python
    echo "$want" > "$stamp"
fi
