#!/usr/bin/env bash
# Runs the offline steemgate demo (gateway + simulated chain + embedded store).
# Installs the build packages pingora needs (cmake, a C compiler) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
if [ ${#missing[@]} -gt 0 ]; then
  echo "steemgate's build needs: ${missing[*]} (pingora compiles zlib-ng with cmake). Installing..."
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
  elif command -v dnf >/dev/null 2>&1; then
    $sudo_cmd dnf install -y cmake gcc
  elif command -v brew >/dev/null 2>&1; then
    brew install cmake
  else
    echo "Please install: ${missing[*]}, then run this script again." >&2
    exit 1
  fi
fi
exec cargo run --release -- demo "$@"
