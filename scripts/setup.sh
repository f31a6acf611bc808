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

# Real components for the end-to-end tests (Debian packages): the CNCF distribution registry,
# skopeo, htpasswd (bcrypt entries for the registry's basic auth), Python's venv (the tests
# install the oras client into a virtualenv of their own), and Chromium with chromedriver.
packages=()
[ -x /usr/bin/docker-registry ] || packages+=(docker-registry)
command -v skopeo >/dev/null || packages+=(skopeo)
command -v htpasswd >/dev/null || packages+=(apache2-utils)
# Debian ships venv without ensurepip unless python3-venv is installed.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
# What scripts/post-merge.sh uses (its tests run it).
for tool in curl jq openssl; do
    command -v "$tool" >/dev/null || packages+=("$tool")
done
# Headless Chromium and its WebDriver for the viewer's browser tests.
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "setup: missing Debian packages ${packages[*]}: install them as root with" \
            "apt-get install ${packages[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
