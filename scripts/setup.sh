# Sourced by the other scripts: installs what FlexOS needs on a fresh Debian machine
# (idempotently: nothing is installed twice) and puts the Swift toolchain on PATH.

set -euo pipefail

flexos_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

flexos_missing=()
# A script may ask for more (scripts/bench: redis-server, the benchmark's baseline).
# python3-redis: redis-py, the client library a test drives the appliance with.
for package in libelf-dev libdw-dev libseccomp-dev liburing-dev redis-tools redis-server python3-redis qemu-system-x86 pkg-config cpio ${flexos_extra_packages:-}; do
    dpkg -s "$package" >/dev/null 2>&1 || flexos_missing+=("$package")
done
# libvirt (flexosctl hosts) without what it recommends (dnsmasq, firewalls, ...): the
# tests start libvirtd by hand and define no networks.
flexos_missing_bare=()
for package in libvirt-dev libvirt-daemon-system libvirt-clients; do
    dpkg -s "$package" >/dev/null 2>&1 || flexos_missing_bare+=("$package")
done
if ((${#flexos_missing[@]} + ${#flexos_missing_bare[@]})); then
    echo "setup: installing ${flexos_missing[*]} ${flexos_missing_bare[*]}" >&2
    flexos_sudo=""
    [ "$(id -u)" -eq 0 ] || flexos_sudo="sudo"
    $flexos_sudo apt-get update -qq
    if ((${#flexos_missing[@]})); then
        $flexos_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${flexos_missing[@]}" >/dev/null
    fi
    if ((${#flexos_missing_bare[@]})); then
        $flexos_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${flexos_missing_bare[@]}" >/dev/null
    fi
fi

# /dev/kvm as Debian's udev rule leaves it (root:kvm, 0660): containers without udev have it
# root-only, and then libvirtd, whose QEMU runs as libvirt-qemu (group kvm), finds its cache
# of QEMU's capabilities stale at every call and probes QEMU again: 7 s per `virsh
# capabilities`, 36 s per domain start, instead of 40 ms and 0.5 s.
if [ -c /dev/kvm ] && [ "$(stat -c %G:%a /dev/kvm)" = "root:600" ] && getent group kvm >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; else sudo chgrp kvm /dev/kvm && sudo chmod 0660 /dev/kvm; fi
fi

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
command -v swift >/dev/null 2>&1 || { echo "setup: Swift 6.x is needed (https://swift.org/install)" >&2; exit 1; }

# Release builds: static Swift runtime and no PIE, so flexosd starts in a few milliseconds.
flexos_release_flags=(-c release --static-swift-stdlib -Xlinker -no-pie)

cd "$flexos_root"
