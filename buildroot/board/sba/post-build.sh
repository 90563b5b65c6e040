#!/bin/bash
# Buildroot post-build step (runs after the overlay image/overlay is copied into the target):
# checks the appliance is complete and records what it was built from.
#   post-build.sh TARGET_DIR
set -euo pipefail

target=${1:?usage: post-build.sh TARGET_DIR (buildroot passes it)}
die() { echo "post-build.sh: $*" >&2; exit 1; }

[ -x "$target/usr/bin/sba-registrar" ] || die "sba-registrar is not in the target (BR2_PACKAGE_SBA_SERVICES)"
[ -x "$target/usr/sbin/dahdi_cfg" ] || die "dahdi_cfg is not in the target (BR2_PACKAGE_DAHDI_TOOLS)"
[ -f "$target/etc/sba/sba.toml" ] || die "/etc/sba/sba.toml is missing from the overlay"
find "$target/lib/modules" -name 'dahdi.ko*' | grep -q . || die "the DAHDI kernel modules are missing"
for unit in "$target"/etc/systemd/system/sba-*.service; do
    bin=$(sed -n 's/^ConditionPathExists=//p' "$unit" | head -n1)
    [ -z "$bin" ] || [ -x "$target$bin" ] || echo "post-build.sh: note: $bin absent, $(basename "$unit") will be skipped" >&2
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
{
    echo "builder=buildroot ${BR2_VERSION:-unknown}"
    echo "source=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
} > "$target/etc/sba/build-info"
