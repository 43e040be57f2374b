#!/bin/sh
# Builds cordon-launcher (release, static PIE) and puts it next to the compiled
# TypeScript, where cordon looks for it first.
set -eu
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  PATH="$HOME/.cargo/bin:$PATH"; export PATH
fi
command -v cargo >/dev/null 2>&1 || { echo "build-launcher: cargo not found (install Rust, or put ~/.cargo/bin on PATH)" >&2; exit 1; }
# crt-static on the gnu target yields a static PIE: no libc needed at run time,
# so the binary works inside any sandbox root.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=pie" \
  cargo build --quiet --release --manifest-path launcher/Cargo.toml --target-dir launcher/target
mkdir -p dist
cp launcher/target/release/cordon-launcher dist/cordon-launcher.tmp
mv -f dist/cordon-launcher.tmp dist/cordon-launcher
