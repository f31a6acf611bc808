#!/usr/bin/env bash
# Installs what building and testing the project needs beyond the Rust toolchain, Git and
# Node.js/npm, and fails with a message saying what is missing when it cannot.
# Safe to run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in cargo git npm tar sha256sum; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: missing ${missing[*]}: install the Rust toolchain (rustup), Git and Node.js with npm" >&2
    exit 1
fi

# The devfile JSON schemas (third-party files, verified by sha256, kept out of Git).
schemas/fetch-devfile-schemas.sh
