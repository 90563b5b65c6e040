#!/bin/bash
# Vendors the workspace's crates into BR2_DL_DIR for the buildroot build, which runs cargo offline.
# Needs crates.io once; run it again whenever Cargo.lock changes (the build checks).
#
#   buildroot/package/sba-services/vendor-crates.sh BR2_DL_DIR
set -euo pipefail

dl=${1:?usage: vendor-crates.sh BR2_DL_DIR (the download directory or mirror buildroot uses)}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
dest="$dl/sba-services/vendor"
command -v cargo >/dev/null || { echo "vendor-crates.sh: cargo is needed on the build host" >&2; exit 1; }

mkdir -p "$dl/sba-services"
rm -rf "$dest.new"
cargo vendor --quiet --locked --versioned-dirs --manifest-path "$repo/Cargo.toml" "$dest.new" >/dev/null
(cd "$repo" && sha256sum Cargo.lock) > "$dest.new/.sba-cargo-lock.sha256"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "vendor-crates.sh: $(ls "$dest" | wc -l) crates in $dest"
