#!/bin/sh
# The test command's setup (npm test runs it first). It says what it installs
# and why before doing it:
#   tmux      (Debian package) the REPL's terminal tests drive a real terminal
#   xz-utils  (Debian package) the decompressor test makes its reference vmlinux
#             with the native xz
#   Debian's i386 kernel package, downloaded (not installed) with apt and its
#             bzImage cached in .cache/debian-kernel/ for the decompressor test
#             and the benchmark: tests/debian_kernel.ts does that, step by step
# Installing needs root (as on CI and the project's machines); otherwise it says
# what to install. If the kernel cannot be fetched, the tests that need it skip,
# saying so; the rest run.
set -e
cd "$(dirname "$0")/.."
missing=""
why=""
if ! command -v tmux >/dev/null 2>&1; then
  missing="$missing tmux"
  why="$why
  tmux      the REPL's terminal tests drive a real terminal"
fi
if ! command -v xz >/dev/null 2>&1; then
  missing="$missing xz-utils"
  why="$why
  xz-utils  the decompressor test unpacks its reference vmlinux with the native xz"
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "test-setup: the test suite needs Debian packages that are missing:$why" >&2
    echo "test-setup: please install them: apt-get install$missing" >&2
    exit 1
  fi
  echo "test-setup: installing Debian packages the test suite needs (apt-get install$missing):$why" >&2
  apt-get update -qq >/dev/null 2>&1 || apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  echo "test-setup: installed$missing" >&2
fi
deno=./node_modules/.bin/deno
[ -x "$deno" ] || deno=deno
# Fetches (or finds cached) the Debian kernel, saying each step first; a failure
# is reported there and is not fatal: the tests that need the kernel skip.
"$deno" run -A tests/debian_kernel.ts || true
