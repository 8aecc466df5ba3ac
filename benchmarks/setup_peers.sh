#!/usr/bin/env bash
# Create one virtual environment per peer tool under $NPUKIT_PEERS (default
# ~/.cache/npukit/peers). The benchmark scripts run each peer as a subprocess of its own
# venv's python, so the peers' pinned dependencies never meet npukit's environment.
#
#   bash benchmarks/setup_peers.sh            # all peers
#   bash benchmarks/setup_peers.sh vela       # some of: scalesim zigzag vela nncf
set -euo pipefail

ROOT="${NPUKIT_PEERS:-$HOME/.cache/npukit/peers}"
PY="${PYTHON:-python3.11}"
mkdir -p "$ROOT"

make_venv() {   # name, pip requirements...
  local name="$1"; shift
  local dir="$ROOT/$name"
  if [ -x "$dir/bin/python" ] && [ -f "$dir/.complete" ]; then
    echo "[$name] already set up in $dir"; return
  fi
  echo "[$name] creating $dir"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip
  "$dir/bin/python" -m pip install -q "$@"
  "$dir/bin/python" -m pip freeze > "$dir/requirements.lock"
  touch "$dir/.complete"
  echo "[$name] installed: $(grep -iE "^($name|scalesim|zigzag-dse|ethos-u-vela)==" "$dir/requirements.lock" | tr '\n' ' ')"
}

[ $# -eq 0 ] && set -- scalesim zigzag vela nncf
for peer in "$@"; do
  case "$peer" in
    # SCALE-Sim 3.0: its pinned numpy must stay below 2.4.
    scalesim) make_venv scalesim "scalesim>=3.0,<3.1" "numpy<2.4" ;;
    # ZigZag 3.9: imports `six` without declaring it.
    zigzag) make_venv zigzag "zigzag-dse>=3.9,<3.10" six ;;
    # Vela 5.x: the Ethos-U compiler and its performance estimator.
    vela) make_venv vela "ethos-u-vela>=5,<6" ;;
    # NNCF 3.4: post-training quantisation of ONNX models, with onnxruntime as its backend.
    nncf) make_venv nncf "nncf>=3.4,<3.5" onnx onnxruntime ;;
    *) echo "unknown peer '$peer' (choose from: scalesim zigzag vela nncf)" >&2; exit 2 ;;
  esac
done
echo "peers ready under $ROOT"
