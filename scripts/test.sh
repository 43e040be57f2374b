#!/bin/sh
# npm test: the launcher's cargo tests, then every node:test suite, as the
# invoking user and (when that is root) again as an unprivileged user from a
# world-readable copy of the built tree, so a checkout under a 0700 home works.
set -eu
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then PATH="$HOME/.cargo/bin:$PATH"; export PATH; fi
[ -x dist/cordon-launcher ] || { echo "test: dist/cordon-launcher missing; run npm ci (or npm run build) first" >&2; exit 1; }

echo "== cargo test (launcher)"
cargo test --quiet --release --manifest-path launcher/Cargo.toml --target-dir launcher/target

echo "== node tests as $(id -un) (uid $(id -u))"
node scripts/run-tests.mjs

if [ "$(id -u)" = 0 ]; then
  UNPRIV_UID=${CORDON_TEST_UID:-65534}
  copy=$(mktemp -d /tmp/cordon-unpriv-XXXXXX)
  trap 'rm -rf "$copy"' EXIT INT TERM
  cp -a package.json dist test scripts node_modules "$copy"/
  [ -d bench ] && cp -a bench "$copy"/
  chmod -R a+rX "$copy"
  chmod 755 "$copy"
  home=$copy/home; mkdir -p "$home"; chown "$UNPRIV_UID" "$home"
  echo "== node tests as uid $UNPRIV_UID (copy in $copy)"
  (cd "$copy" && env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" LANG=C.UTF-8 CI="${CI:-}" \
    setpriv --reuid="$UNPRIV_UID" --regid="$UNPRIV_UID" --clear-groups --inh-caps=-all \
    node scripts/run-tests.mjs)
else
  echo "== unprivileged pass skipped: already running as uid $(id -u)"
fi
