#!/usr/bin/env bash
# Builds web/dist (type check + vite build) unless it was built from these very inputs: their
# hash is kept in dist/.inputs, so a second `make up` or `make test` costs a hash.
set -euo pipefail
cd "$(dirname "$0")"
inputs=(package.json package-lock.json index.html tsconfig.json vite.config.ts)
hash=$(cat "${inputs[@]}" $(find src -type f ! -name '*.test.ts' | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)
if [[ -f dist/.inputs && "$(cat dist/.inputs)" == "$hash" ]]; then
    exit 0
fi
bash ./deps.sh
npm run --silent build
echo "$hash" > dist/.inputs
