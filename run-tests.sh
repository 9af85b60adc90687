#!/usr/bin/env bash
# Install everything the tests need and run them: the README's test command, and what CI runs.
# Extra arguments go to pytest (e.g. ./run-tests.sh -k udp).
set -euo pipefail
cd "$(dirname "$0")"
# The docker-compose client checks docker-compose.yml (no engine needed); optional, the test says why it skips.
if ! command -v docker-compose >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null 2>&1 \
    || echo "run-tests: could not install docker-compose; the compose test will be skipped" >&2
fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
