#!/usr/bin/env bash
# `deno task test`: starts the local services (reused when running) and runs
# every test. Tests that need a service fail when it is missing; none skip.
# Extra arguments go to `deno test` (e.g. a path or --filter NAME).
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
bash scripts/services.sh start >/dev/null
if (($# == 0)); then set -- tests/; fi
exec deno test -A --frozen "$@"
