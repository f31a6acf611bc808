#!/usr/bin/env bash
# Merge-to-live benchmark (not a test): a one-stack merge to the community registry, from the
# trigger to the new version in /v2index/all on the replica that receives the trigger and on a
# second replica that follows the registry, against publishing + restarting a server.
#
# Usage: scripts/bench-updates.sh     (BENCH_RUNS=10 in the environment sets the number of runs)
#
# Installs what is missing (scripts/setup.sh: the devfile schemas, Debian docker-registry), builds
# index-server and index-generator in release (the bench runs both as processes), then runs
# `cargo bench -p index-server --bench updates` (index-server/benches/updates.rs says what it
# measures). Prints one `name: value unit` line per figure, ending with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p index-server -p index-generator --bins
cargo bench --locked -p index-server --bench updates
