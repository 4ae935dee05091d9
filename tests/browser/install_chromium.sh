#!/bin/sh
# Find or install a Chromium for tests/browser (Playwright drives it through executable_path).
#
# A browser already at hand is used as it is, in this order: $CHROMIUM, Debian's /usr/bin/chromium,
# Ubuntu's /usr/bin/chromium-browser, /snap/bin/chromium, Playwright's own (`playwright install
# chromium`, which needs the internet).  Only when none is found, and only with root (or sudo) and
# apt-get, does it install one, and it says so first.  Without them it prints how to get one and
# exits 1; `make test` then runs every other test and the browser test skips with a loud line
# (with DIFFEDU_REQUIRE_BROWSER=1, as CI sets, the browser test fails instead).
set -eu
for exe in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser /snap/bin/chromium; do
    if [ -n "$exe" ] && [ -x "$exe" ]; then
        exit 0
    fi
done
for exe in "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium-*/chrome-linux/chrome \
           "$HOME/Library/Caches/ms-playwright"/chromium-*/chrome-mac/Chromium.app/Contents/MacOS/Chromium; do
    if [ -x "$exe" ]; then
        exit 0
    fi
done
how="set CHROMIUM=/path/to/chromium, or run: .venv/bin/python -m playwright install chromium"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no Chromium found and no apt-get to install one; for the browser test, $how" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo"
else
    echo "install_chromium.sh: no Chromium found; installing one needs root (sudo apt-get install chromium);" >&2
    echo "  or, for the browser test, $how" >&2
    exit 1
fi
# Debian names the package chromium; Ubuntu's chromium-browser is a snap wrapper, chromium a transitional name
package=chromium
if ! apt-cache show chromium >/dev/null 2>&1; then
    package=chromium-browser
fi
echo "install_chromium.sh: no Chromium found; installing the system package '$package' with apt-get for the browser test"
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package"
test -x /usr/bin/chromium || test -x /usr/bin/chromium-browser
