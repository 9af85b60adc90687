#!/usr/bin/env bash
# Install everything the tests need and run them: the README's test command, and what CI runs.
# Extra arguments go to pytest (e.g. ./run-tests.sh -k udp).
set -euo pipefail
cd "$(dirname "$0")"
# Debian packages some tests use as real peers (each test skips, saying why, where one is missing):
# docker-compose checks docker-compose.yml (no engine needed); unzip and openssl run the stack's certs
# script; direwolf and gnuais are independent AIS decoders run on our modulator's signals; librtlsdr0
# is what pyrtlsdr loads for a dongle; npm brings Elasticsearch's API types (below).
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v atest >/dev/null 2>&1 || missing+=(direwolf)
command -v gnuais >/dev/null 2>&1 || missing+=(gnuais)
ldconfig -p 2>/dev/null | grep -q librtlsdr || missing+=(librtlsdr0)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >/dev/null 2>&1 \
    || echo "run-tests: could not install ${missing[*]}; the tests that use them will be skipped" >&2
fi
# Elasticsearch's API specification as TypeScript (the official client's types) and tsc, pinned by
# tests/es-api-types/package-lock.json: tests/test_compose.py type-checks the stack's security requests
if command -v npm >/dev/null 2>&1 && [ ! -d tests/es-api-types/node_modules/typescript ]; then
  npm ci --prefix tests/es-api-types --no-audit --no-fund --silent >/dev/null 2>&1 \
    || echo "run-tests: could not install tests/es-api-types; the type check of the security requests will be skipped" >&2
fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
