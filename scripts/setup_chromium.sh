#!/usr/bin/env bash
# setup_chromium.sh — the test-time browser: Debian's chromium, for the headless check of
# `qsweep report`'s report.html (tests/e2e/report.sh). Not needed to build or run qsweep.
# Idempotent: installs only when no chromium is on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
