#!/usr/bin/env bash
# Bounded fuzzing for CI: builds the cargo-fuzz crate in fuzz/ once, then runs
# every target (`cargo fuzz list`) for FUZZ_SECONDS each (default 20) starting
# from the committed seed corpus. A crash, panic, failed assertion or timeout
# fails the script; the reproducer is left in fuzz/artifacts/<target>/ and
# printed.
#
# Toolchain: the default (stable) one. cargo-fuzz passes nightly-only flags
# only for sanitizers (-Zsanitizer) and --build-std; with `--sanitizer none`
# every flag it gives rustc (-Cpasses=sancov-module, -Cllvm-args=...,
# --cfg fuzzing, -Cdebug-assertions) is stable, and libfuzzer-sys builds
# libFuzzer with the C++ compiler. So no nightly and no RUSTC_BOOTSTRAP.
#
# Why these build flags: the default cargo-fuzz build (one codegen unit,
# AddressSanitizer) compiles pingora and every dependency with coverage
# instrumentation and took far longer than the fuzzing itself. The code
# under test is safe Rust, so the sanitizer adds little; 16 codegen units
# cut the build time while keeping coverage and debug assertions.
#
# Caching: cargo-fuzz is pinned and installed only when that exact version
# is missing; the fuzz build goes to FUZZ_TARGET_DIR (default: a cache
# directory outside the checkout), so a later run on the same machine, in
# any clone, rebuilds only what changed.
#
# New inputs found in CI go to a scratch directory, never into the
# committed corpus (add small interesting ones by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_fuzz_version=0.13.2
seconds="${FUZZ_SECONDS:-20}"
target_dir="${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/steemgate/fuzz-target}"

if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    echo "installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

build_flags=(--sanitizer none --codegen-units 16 --target-dir "$target_dir")

mapfile -t targets < <(cargo fuzz list)
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets found" >&2
    exit 1
fi
echo "fuzz targets: ${targets[*]} (${seconds} s each)"

build_start=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "fuzz build took $(( $(date +%s) - build_start )) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    if [[ ! -d "fuzz/corpus/$target" ]]; then
        echo "fuzz target $target has no seed corpus in fuzz/corpus/$target" >&2
        exit 1
    fi
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    run_start=$(date +%s)
    # First directory receives new inputs; the committed corpus is read only.
    if ! cargo fuzz run "${build_flags[@]}" "$target" \
        "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>"$scratch/$target.log"; then
        # The panic message first (a backtrace can push it out of the tail).
        grep -m 3 -A 6 -E "panicked at|ERROR: libFuzzer" "$scratch/$target.log" || true
        echo "..."
        tail -n 30 "$scratch/$target.log"
        echo "FUZZ FAILURE in $target; reproducer(s):"
        ls -l "fuzz/artifacts/$target"
        exit 1
    fi
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$scratch/$target.log" | sed "s/^/$target /" || true
    echo "$target ran $(( $(date +%s) - run_start )) s"
done
