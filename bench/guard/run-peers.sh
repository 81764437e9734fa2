#!/usr/bin/env bash
# Compare warden's prompt-injection detector with open-source peers on the same validation split.
#
#   bash bench/guard/run-peers.sh [DATA]     # DATA defaults to ../shared/datasets/injection-dev.jsonl
#
# 1. warden's eval command scores the validation split with the embedded weights and writes the
#    split's rows to a temporary file (never into the repository);
# 2. the peers are installed from npm into a temporary prefix, pinned;
# 3. peers.mjs scores the same rows.
# Everything temporary is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-../shared/datasets/injection-dev.jsonl}
tmp=$(mktemp -d /tmp/warden-peers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go run ./internal/guard/injection/train -eval -data "$data" -export "$tmp/val.jsonl"
npm install --silent --no-audit --no-fund --prefix "$tmp/peers" @andersmyrmel/vard@1.2.0 llm_guardrail@2.1.2 >/dev/null
PEER_PREFIX="$tmp/peers" node bench/guard/peers.mjs "$tmp/val.jsonl"
