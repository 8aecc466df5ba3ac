#!/usr/bin/env bash
# Debian packages the workload tests and examples read: espeak-ng (keyword synthesis),
# dataset-fashion-mnist (vision), pocketsphinx-testdata (speech recordings for the VAD),
# chromium (the HTML report's tests load it in a headless browser).
# Idempotent and quiet; needs root (CI runs as root). Skips what is already installed.
set -euo pipefail
PACKAGES=(espeak-ng dataset-fashion-mnist pocketsphinx-testdata chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install_data.sh: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
