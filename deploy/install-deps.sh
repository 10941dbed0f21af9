#!/usr/bin/env bash
# Installs the Debian packages in deploy/debian-packages.txt that are missing; fast when none
# are. Needs root to install; run as another user it names what is missing and stops.
set -euo pipefail
cd "$(dirname "$0")"
mapfile -t wanted < <(grep -Ev '^\s*(#|$)' debian-packages.txt)
missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Virga needs these Debian packages: ${missing[*]}" >&2
    echo "Install them as root: apt-get install ${missing[*]}   (or run make as root)" >&2
    exit 1
fi
echo "==> installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
