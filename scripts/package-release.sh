#!/usr/bin/env bash
# package-release.sh TAG DIST [TARGET_DIR]: the release assets of cargo-containerize.
# For each musl target built in TARGET_DIR (default: target), writes
#   DIST/cargo-containerize-TAG-TRIPLE.tar.gz  (a folder of that name: the binary, README.md)
# in the layout `[package.metadata.binstall]` in Cargo.toml describes, as reproducible
# archives (sorted names, owner 0, mtime 0, no gzip timestamp); then DIST/SHA256SUMS over
# every file in DIST, which the composite action (action.yml) checks before installing.
set -euo pipefail
tag="${1:?usage: package-release.sh TAG DIST [TARGET_DIR]}"
dist="${2:?usage: package-release.sh TAG DIST [TARGET_DIR]}"
target_dir="${3:-target}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "$tag" in v*) ;; *) echo "package-release.sh: TAG must look like v1.2.3, not \`$tag\`" >&2; exit 2 ;; esac
mkdir -p "$dist"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for triple in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  bin="$target_dir/$triple/release/cargo-containerize"
  if [ ! -f "$bin" ]; then
    echo "package-release.sh: \`$bin\` is missing: build it first (cargo containerize --platform all)" >&2
    exit 1
  fi
  name="cargo-containerize-$tag-$triple"
  mkdir "$work/$name"
  install -m 0755 "$bin" "$work/$name/cargo-containerize"
  install -m 0644 "$repo/README.md" "$work/$name/README.md"
  tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - "$name" \
    | gzip -n -9 > "$dist/$name.tar.gz.partial"
  mv "$dist/$name.tar.gz.partial" "$dist/$name.tar.gz"
done
(cd "$dist" && find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name '*.partial' -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum -- > SHA256SUMS.partial && mv SHA256SUMS.partial SHA256SUMS)
echo "package-release.sh: wrote $(ls "$dist" | wc -l) files to $dist"
