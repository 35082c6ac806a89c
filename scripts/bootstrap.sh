#!/usr/bin/env bash
# Sets the toolchain up on a machine that has only Node (>= 20) and npm, then runs one
# package script with it: pnpm 12 comes through npx, Node 24 from the `node` npm package
# (a root devDependency, so it heads the PATH of every package script).
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=12.21.0
export npm_config_update_notifier=false
pnpm() { npx --yes "pnpm@${PNPM_VERSION}" "$@"; }
if [ -f pnpm-lock.yaml ]; then
  pnpm install --frozen-lockfile --reporter=append-only
else
  pnpm install --reporter=append-only
fi
exec npx --yes "pnpm@${PNPM_VERSION}" run "$@"
