#!/bin/sh
# Installs the tools `npm run bench` compares cordon against, from their real
# packages: Debian bubblewrap/socat/ripgrep (srt's own runtime dependencies,
# and bwrap as the raw baseline) plus curl and openssl, and the npm
# package @anthropic-ai/sandbox-runtime (srt) into bench/.peers/ so it never
# becomes a dependency of cordon. Idempotent: installs only what is missing.
# cordon itself never calls any of these; only the benchmark does.
set -eu
cd "$(dirname "$0")/.."

need=""
for pair in bwrap:bubblewrap socat:socat rg:ripgrep openssl:openssl curl:curl setpriv:util-linux; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench-peers: apt-get install$need"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  else
    echo "bench-peers: missing$need; install with: sudo apt-get install -y$need" >&2
  fi
fi

# srt: pinned by default so runs are comparable; SRT_VERSION=latest to move on.
SRT_VERSION=${SRT_VERSION:-}
peers=bench/.peers
mkdir -p "$peers"
if [ ! -f "$peers/package.json" ]; then
  printf '{ "name": "cordon-bench-peers", "private": true, "type": "module" }\n' > "$peers/package.json"
fi
spec=@anthropic-ai/sandbox-runtime${SRT_VERSION:+@$SRT_VERSION}
if [ ! -x "$peers/node_modules/.bin/srt" ] || [ -n "$SRT_VERSION" ]; then
  echo "bench-peers: npm install $spec into $peers"
  (cd "$peers" && npm install --no-audit --no-fund --loglevel=error "$spec")
fi
printf 'bench-peers: bwrap %s | socat %s | rg %s | srt %s\n' \
  "$(bwrap --version 2>/dev/null | awk '{print $2}' || echo missing)" \
  "$(socat -V 2>/dev/null | awk '/socat version/{print $3; exit}' || echo missing)" \
  "$(rg --version 2>/dev/null | awk 'NR==1{print $2}' || echo missing)" \
  "$(node -p "require('./$peers/node_modules/@anthropic-ai/sandbox-runtime/package.json').version" 2>/dev/null || echo missing)"
