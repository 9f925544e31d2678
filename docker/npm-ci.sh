#!/bin/sh
# The front-end stage's first step (docker/Dockerfile): the locked npm packages, once the build
# context is known to hold the front end's sources. Without them the image would have no chart:
# the build stops here, in one line, rather than at a COPY with the builder's own words.
set -eu
if [ ! -f package.json ] || [ ! -f package-lock.json ]; then
    echo "stockapp: the build context has no frontend/package.json and package-lock.json (the" \
        "front end's sources, which the image serves): build from the repository's root:" \
        "docker build -f docker/Dockerfile ." >&2
    exit 1
fi
exec npm ci --no-audit --no-fund
