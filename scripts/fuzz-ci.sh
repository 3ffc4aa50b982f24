#!/usr/bin/env bash
# Bounded fuzzing for CI: builds the cargo-fuzz crate in fuzz/ once, then runs
# every target for FUZZ_SECONDS (default 45) starting from the committed seed
# corpus. A crash, panic, failed assertion or timeout fails the script; the
# reproducer is left in fuzz/artifacts/<target>/ and printed.
#
# Why these build flags: the default cargo-fuzz build (release with one
# codegen unit, AddressSanitizer) compiles pingora and every dependency with
# coverage instrumentation and took far longer than the fuzzing itself. The
# code under test is safe Rust, so the sanitizer adds little; 16 codegen
# units cut the build time while keeping coverage and debug assertions.
#
# New inputs found in CI go to a scratch directory, never into the
# committed corpus (add small interesting ones by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-45}"
targets=(cookie_decode chain_decode config_parse path_canonicalize)

# Nightly if installed; otherwise stable with RUSTC_BOOTSTRAP (cargo-fuzz
# needs nightly-only flags only for sanitizers, which we do not use).
# FUZZ_TOOLCHAIN=stable forces the stable path (what a fresh CI machine has).
if [[ "${FUZZ_TOOLCHAIN:-}" != stable ]] && rustup run nightly rustc --version >/dev/null 2>&1; then
    cargo_fuzz=(cargo +nightly fuzz)
else
    echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

build_flags=(--sanitizer none --codegen-units 16)

build_start=$(date +%s)
"${cargo_fuzz[@]}" build "${build_flags[@]}"
echo "fuzz build took $(( $(date +%s) - build_start )) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    run_start=$(date +%s)
    # First directory receives new inputs; the committed corpus is read only.
    if ! "${cargo_fuzz[@]}" run "${build_flags[@]}" "$target" \
        "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 2>"$scratch/$target.log"; then
        tail -n 60 "$scratch/$target.log"
        echo "FUZZ FAILURE in $target; reproducer(s):"
        ls -l "fuzz/artifacts/$target"
        exit 1
    fi
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$scratch/$target.log" | sed "s/^/$target /" || true
    echo "$target ran $(( $(date +%s) - run_start )) s"
done
