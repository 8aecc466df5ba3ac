#!/usr/bin/env bash
# Install espeak-ng (if missing) and synthesise the keyword-spotting set; arguments pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_data.sh
python scripts/make_kws_dataset.py "$@"
