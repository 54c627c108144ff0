#!/bin/sh
# Install the Debian packages the test suite uses, if they are missing:
#   tmux      — the REPL's terminal tests drive a real terminal
#   xz-utils  — the decompressor test unpacks the reference vmlinux natively
# (The Debian i386 kernel package itself is fetched by tests/debian_kernel.ts.)
# Runs as root on CI and on the project's machines; elsewhere it says what to install.
set -e
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v xz >/dev/null 2>&1 || missing="$missing xz-utils"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "test-setup: please install:$missing (apt-get install$missing)" >&2
  exit 1
fi
echo "test-setup: installing$missing" >&2
apt-get update -qq >/dev/null 2>&1 || apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
