#!/bin/sh
# Debian packages the test suites use as real clients and servers. Installed
# only when missing, so a developer machine that has them is not touched.
set -eu
need=""
for pair in curl:curl git:git python3:python3 gcc:gcc ip:iproute2 setpriv:util-linux ssh:openssh-client sshd:openssh-server; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need="$need $pkg"
done
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ci-deps: installing$need"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  else
    echo "ci-deps: missing$need (install them with your package manager)" >&2
  fi
fi
