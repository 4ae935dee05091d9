#!/bin/sh
# Install Debian's chromium for tests/browser (Playwright drives it through executable_path;
# `playwright install` would download its own browsers, which these machines cannot).
# Idempotent: does nothing when /usr/bin/chromium exists.  Needs root or sudo, and apt-get.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: /usr/bin/chromium is missing and apt-get is not available;" >&2
    echo "  install Chromium yourself and set CHROMIUM=/path/to/chromium for tests/browser" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install_chromium.sh: installing chromium needs root (or sudo): apt-get install -y chromium" >&2
    exit 1
fi
echo "install_chromium.sh: installing Debian's chromium (apt-get) for the browser test"
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
test -x /usr/bin/chromium
