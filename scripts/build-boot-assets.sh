#!/usr/bin/env bash
# Builds the kernel and initramfs that the VM boot test (tests/vm-boot.test.ts) serves to a
# QEMU guest: Debian's current amd64 kernel and a busybox initramfs whose /init comes from
# tests/fixtures/initramfs. Packages come from Debian's mirrors with `apt-get download`.
#
# Usage: scripts/build-boot-assets.sh [CACHE_DIRECTORY]   (default: .cache/boot-assets)
# Prints the asset directory as the last line of stdout; it contains `vmlinuz` and `initrd.img`.
# The directory is named after the kernel package and its version, so a second run reuses the
# kernel and rebuilds only an initramfs whose inputs changed.
set -euo pipefail
cd "$(dirname "$0")/.."

cache_root="${1:-.cache/boot-assets}"
fixture_directory="tests/fixtures/initramfs"
# Load order matters: each module needs the ones before it.
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)

log() { echo "build-boot-assets: $*" >&2; }

# Prints the name of the kernel package that linux-image-amd64 depends on.
resolve_kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

kernel_package="$(resolve_kernel_package || true)"
if [ -z "$kernel_package" ]; then
  log "apt-cache does not know linux-image-amd64; running apt-get update"
  apt-get update -qq >&2
  kernel_package="$(resolve_kernel_package)"
fi
if [ -z "$kernel_package" ]; then
  log "cannot resolve the kernel package behind linux-image-amd64"
  exit 1
fi
kernel_version="$(apt-cache show --no-all-versions "$kernel_package" | awk '/^Version:/ { print $2; exit }')"
asset_directory="$cache_root/${kernel_package}_${kernel_version}"
mkdir -p "$cache_root"

# Downloads the named packages into the current directory, updating the package lists once when
# the mirror no longer has the versions they name.
download_packages() {
  if ! apt-get download "$@" >&2; then
    log "apt-get download failed; running apt-get update and retrying"
    apt-get update -qq >&2
    apt-get download "$@" >&2
  fi
}

if [ ! -f "$asset_directory/vmlinuz" ] || [ ! -x "$asset_directory/busybox" ]; then
  log "downloading $kernel_package $kernel_version and busybox-static"
  work="$(mktemp -d "$cache_root/.work.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && download_packages "$kernel_package" busybox-static)

  mkdir -p "$work/kernel" "$work/busybox" "$work/assets/modules"
  dpkg-deb --fsys-tarfile "$work/${kernel_package}_"*.deb \
    | tar -x -C "$work/kernel" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/*' './lib/modules/*/kernel/net/core/*'
  dpkg-deb --fsys-tarfile "$work"/busybox-static_*.deb | tar -x -C "$work/busybox" ./bin/busybox

  cp "$work"/kernel/boot/vmlinuz-* "$work/assets/vmlinuz"
  cp "$work/busybox/bin/busybox" "$work/assets/busybox"
  for module in "${modules[@]}"; do
    found="$(find "$work/kernel/lib/modules" \( -name "$module.ko" -o -name "$module.ko.xz" -o -name "$module.ko.zst" \) | head -n 1)"
    # A module the package does not ship is built into the kernel.
    case "$found" in
      "") log "module $module is not in the package; assuming it is built in" ;;
      # busybox insmod may not read compressed modules.
      *.xz) xz -dc "$found" > "$work/assets/modules/$module.ko" ;;
      *.zst) zstd -qdc "$found" > "$work/assets/modules/$module.ko" ;;
      *) cp "$found" "$work/assets/modules/$module.ko" ;;
    esac
  done
  echo "$kernel_package $kernel_version" > "$work/assets/kernel-package"

  rm -rf "$asset_directory"
  mv "$work/assets" "$asset_directory"
  rm -rf "$work"
  trap - EXIT
fi

# The initramfs depends on the fixture files and the modules; its stamp is their checksum.
stamp="$( (cat "$fixture_directory/init" "$fixture_directory/udhcpc.script"; ls "$asset_directory/modules") | sha256sum | cut -d' ' -f1)"
if [ ! -f "$asset_directory/initrd.img" ] || [ "$(cat "$asset_directory/initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "building the initramfs"
  root="$(mktemp -d "$cache_root/.initramfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/modules}
  cp "$asset_directory/busybox" "$root/bin/busybox"
  # Links for every applet the busybox build has, so /init can call them by name.
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  install -m 755 "$fixture_directory/init" "$root/init"
  install -m 755 "$fixture_directory/udhcpc.script" "$root/bin/udhcpc.script"
  cp "$asset_directory"/modules/*.ko "$root/lib/modules/" 2>/dev/null || true
  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "$OLDPWD/$asset_directory/busybox" cpio -o -H newc 2>/dev/null) \
    | gzip -9 > "$asset_directory/initrd.img.tmp"
  mv "$asset_directory/initrd.img.tmp" "$asset_directory/initrd.img"
  echo "$stamp" > "$asset_directory/initrd.stamp"
  rm -rf "$root"
  trap - EXIT
fi

echo "$asset_directory"
