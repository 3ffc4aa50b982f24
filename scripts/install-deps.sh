#!/usr/bin/env bash
# Installs the system packages steemgate's build and tests need, and only
# those that are missing, so that a fresh machine with just a Rust toolchain
# can build, test and run the demo.
#
#   --build  a C/C++ compiler, make and cmake: ring, zstd-sys,
#            tikv-jemalloc-sys and libFuzzer compile C/C++, and pingora
#            builds zlib-ng with cmake (libz-ng-sys has no other way).
#   --test   the programs the integration tests start: redis-server, nginx,
#            caddy, python3, node, systemd-analyze and Debian's chromium
#            (the browser tests; no browser is ever downloaded), Debian's
#            python3-authlib and python3-requests (the OpenID relying
#            parties of tests/oidc_rp.rs and examples/oidc-rp/), and npm
#            with the pinned axe-core the browser tests inject
#            (scripts/browser-deps.sh).
#   --bench  the load generators and proxies bench/ compares with: nginx,
#            wrk, h2load (nghttp2-client, for `bench/run.sh --h2`), curl,
#            jq, openssl and python3 (Debian/Ubuntu only).
#
# Debian/Ubuntu (apt-get) for all; Fedora (dnf) and macOS (brew) for
# --build. Uses sudo when not root.
set -euo pipefail

want_build=0
want_test=0
want_bench=0
for arg in "$@"; do
    case "$arg" in
        --build) want_build=1 ;;
        --test) want_test=1 ;;
        --bench) want_bench=1 ;;
        *) echo "usage: $0 [--build] [--test] [--bench]" >&2; exit 2 ;;
    esac
done

# (command that proves it is installed — or a file, when it starts with /
# — and the Debian package)
build_needs=("cc build-essential" "c++ build-essential" "make build-essential" "cmake cmake")
test_needs=("redis-server redis-server" "redis-cli redis-tools" "nginx nginx" "caddy caddy" "python3 python3"
    "node nodejs" "npm npm" "systemd-analyze systemd" "chromium chromium" "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core"
    "/usr/lib/python3/dist-packages/authlib/__init__.py python3-authlib"
    "/usr/lib/python3/dist-packages/requests/__init__.py python3-requests")

bench_needs=("nginx nginx" "wrk wrk" "h2load nghttp2-client" "curl curl" "jq jq" "openssl openssl" "python3 python3")

missing=()
check() {
    local entry command package
    for entry in "$@"; do
        command="${entry%% *}"
        package="${entry##* }"
        if [[ "$command" == /* ]]; then
            [ -e "$command" ] && continue
        elif command -v "$command" >/dev/null 2>&1; then
            continue
        fi
        if [[ " ${missing[*]-} " != *" $package "* ]]; then
            missing+=("$package")
        fi
    done
}
[ "$want_build" = 1 ] && check "${build_needs[@]}"
[ "$want_test" = 1 ] && check "${test_needs[@]}"
[ "$want_bench" = 1 ] && check "${bench_needs[@]}"
install_browser_deps() {
    if [ "$want_test" = 1 ] && [ ! -f "$(dirname "$0")/../tests/browser-deps/node_modules/axe-core/axe.min.js" ]; then
        "$(dirname "$0")/browser-deps.sh"
    fi
}
if [ ${#missing[@]} -eq 0 ]; then
    install_browser_deps
    exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "installing: ${missing[*]}"
if command -v apt-get >/dev/null 2>&1; then
    "${sudo_cmd[@]}" apt-get update -qq
    # env: sudo would drop DEBIAN_FRONTEND, and a debconf question would hang.
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif [ "$want_test" = 0 ] && [ "$want_bench" = 0 ] && command -v dnf >/dev/null 2>&1; then
    "${sudo_cmd[@]}" dnf install -y gcc gcc-c++ make cmake
elif [ "$want_test" = 0 ] && [ "$want_bench" = 0 ] && command -v brew >/dev/null 2>&1; then
    brew install cmake
else
    echo "Please install: ${missing[*]}, then run this again." >&2
    exit 1
fi
install_browser_deps
