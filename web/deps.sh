#!/usr/bin/env bash
# `npm ci` from the committed package-lock.json, unless node_modules already holds that lock.
set -euo pipefail
cd "$(dirname "$0")"
if ! cmp -s package-lock.json node_modules/.virga-lock 2>/dev/null; then
    npm ci --no-audit --no-fund
    cp package-lock.json node_modules/.virga-lock
fi
