#!/usr/bin/env bash
# The README's main command: generate the demo data and convert it into the lake's layout.
# (It grows into the whole local stack as later issues land.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh
data="${SUPERMARKET_DATA:-demo-data}"
.venv/bin/supermarket generate reference --out "$data"
.venv/bin/supermarket generate history --out "$data"
.venv/bin/supermarket convert "$data/raw/history" --out "$data"
echo "lake tables: $data/lake/{supermarkets,skus,transactions,transaction_items}"
