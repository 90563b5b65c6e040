#!/bin/bash
# Vendors the workspace's crates into BR2_DL_DIR for the buildroot build, which runs cargo offline, and
# writes .sba-legal.mk beside them: the licenses and license files of the crates linked into the
# services on the target (`make legal-info` reads it through sba-services.mk).
# Needs crates.io once; run it again whenever Cargo.lock changes (the build checks).
#
#   buildroot/package/sba-services/vendor-crates.sh BR2_DL_DIR [RUST_TARGET]
set -euo pipefail

dl=${1:?usage: vendor-crates.sh BR2_DL_DIR [RUST_TARGET] (the download directory or mirror buildroot uses)}
target=${2:-x86_64-unknown-linux-gnu}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
dest="$dl/sba-services/vendor"
command -v cargo >/dev/null || { echo "vendor-crates.sh: cargo is needed on the build host" >&2; exit 1; }
command -v python3 >/dev/null || { echo "vendor-crates.sh: python3 is needed on the build host" >&2; exit 1; }

mkdir -p "$dl/sba-services"
rm -rf "$dest.new"
cargo vendor --quiet --locked --versioned-dirs --manifest-path "$repo/Cargo.toml" "$dest.new" >/dev/null
(cd "$repo" && sha256sum Cargo.lock) > "$dest.new/.sba-cargo-lock.sha256"

# The crates the services link on the target: normal dependencies of the workspace's members but the
# test crate, for that platform (cargo vendor keeps every platform's, e.g. windows-sys).
cargo metadata --locked --format-version 1 --filter-platform "$target" --manifest-path "$repo/Cargo.toml" \
    | python3 -c '
import json, os, re, sys
vendor = sys.argv[1]
meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
members = [m for m in meta["workspace_members"] if packages[m]["name"] != "holdfast-tests"]
seen, todo = set(members), list(members)
while todo:
    for dep in nodes[todo.pop()]["deps"]:
        if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])
crates = sorted((packages[i] for i in seen if i not in members), key=lambda p: (p["name"], p["version"]))
licenses, files, bare = set(), [], []
for p in crates:
    # A crate without an SPDX expression names its license file instead (license-file).
    licenses.add(p["license"] or p["name"] + " license file")
    d = p["name"] + "-" + p["version"]
    found = sorted(f for f in os.listdir(os.path.join(vendor, d))
                   if re.match(r"(LICEN[CS]E|COPYING|NOTICE|UNLICENSE)", f, re.I) and os.path.isfile(os.path.join(vendor, d, f)))
    files += [f"vendor/{d}/{f}" for f in found]
    if not found:
        bare.append(d + " (" + str(p["license"]) + ")")
print(f"# Written by vendor-crates.sh: the {len(crates)} crates linked into the services ({sys.argv[2]}).")
if bare:
    print("# Crates that ship no license file (their license is named in Cargo.toml only):")
    print("\n".join(f"#   {b}" for b in bare))
print("SBA_SERVICES_CRATES_LICENSE = " + ", ".join(f"{l} (crates)" for l in sorted(licenses)))
print("SBA_SERVICES_CRATES_LICENSE_FILES = \\\n\t" + " \\\n\t".join(files))
' "$dest.new" "$target" > "$dest.new/.sba-legal.mk"

rm -rf "$dest"
mv "$dest.new" "$dest"
echo "vendor-crates.sh: $(find "$dest" -mindepth 1 -maxdepth 1 -type d | wc -l) crates in $dest, licenses in $dest/.sba-legal.mk"
