#!/usr/bin/env bash
# Debian packages the project uses at run time or in tests: espeak-ng and flite (SynthTalk voices, test speech);
# with PCAVS_UI_TESTS=1 also chromium, nodejs and npm (the browser test of `pcavs ui`, `make test-ui`).
# Installs only what is missing; needs root or sudo. Safe to run repeatedly.
set -euo pipefail
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v flite >/dev/null 2>&1 || need+=(flite)
# browser end-to-end test of `pcavs ui` (make test-ui) only: the default test suite needs no browser
if [ "${PCAVS_UI_TESTS:-0}" = "1" ]; then
    [ -x /usr/bin/chromium ] || need+=(chromium)
    command -v node >/dev/null 2>&1 || need+=(nodejs)
    command -v npm >/dev/null 2>&1 || need+=(npm)
fi
if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: ${need[*]} missing and apt-get is not available; install them by hand" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "warning: ${need[*]} missing and not root; install them by hand" >&2
        exit 0
    fi
fi
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
