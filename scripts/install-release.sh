#!/usr/bin/env bash
# install-release.sh: installs the cargo-containerize release binary for this machine's
# architecture (what action.yml runs). Reads:
#   INPUT_VERSION  the release, e.g. 0.1.0 (required)
#   INPUT_GIT      the repository, e.g. https://github.com/cargo-containerize/cargo-containerize
#   CONTAINERIZE_RELEASE_URL  where the assets are (default: INPUT_GIT/releases/download/vVERSION)
#   INSTALL_DIR    where the binary goes (default: $RUNNER_TEMP/cargo-containerize)
# The archive must match the release's SHA256SUMS, or nothing is installed. If the release
# has no asset for this architecture (or cannot be reached), falls back to
#   cargo install --locked --git INPUT_GIT --tag vVERSION cargo-containerize
# The directory is appended to $GITHUB_PATH when set (GitHub Actions), else printed.
set -euo pipefail
version="${INPUT_VERSION:?INPUT_VERSION (the release to install, e.g. 0.1.0) is not set}"
version="${version#v}"
git_url="${INPUT_GIT:-https://github.com/cargo-containerize/cargo-containerize}"
base="${CONTAINERIZE_RELEASE_URL:-$git_url/releases/download/v$version}"
case "$(uname -m)" in
  x86_64 | amd64) triple=x86_64-unknown-linux-musl ;;
  aarch64 | arm64) triple=aarch64-unknown-linux-musl ;;
  *) echo "install-release.sh: no release binary for $(uname -m)" >&2; triple="" ;;
esac
dest="${INSTALL_DIR:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cargo-containerize}"
publish() {
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$1" >> "$GITHUB_PATH"; fi
  echo "cargo-containerize $version installed in $1"
}
fallback() {
  echo "install-release.sh: $1; building it with cargo install instead" >&2
  cargo install --locked --git "$git_url" --tag "v$version" --root "$dest" cargo-containerize
  publish "$dest/bin"
  exit 0
}
[ -n "$triple" ] || fallback "no release binary for this architecture"
name="cargo-containerize-v$version-$triple"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
get() {
  curl --fail --silent --show-error --location --retry 3 --connect-timeout 30 --max-time 300 -o "$work/$1" "$base/$1"
}
get SHA256SUMS || fallback "could not download $base/SHA256SUMS"
get "$name.tar.gz" || fallback "could not download $base/$name.tar.gz"
# A checksum that does not match is never worked around.
line="$(grep -E "^[0-9a-f]{64}  $name\.tar\.gz\$" "$work/SHA256SUMS" || true)"
if [ -z "$line" ]; then
  echo "install-release.sh: SHA256SUMS of $base lists no $name.tar.gz; nothing was installed" >&2
  exit 1
fi
if ! (cd "$work" && printf '%s\n' "$line" | sha256sum --check --status -); then
  echo "install-release.sh: $name.tar.gz does not match its SHA256SUMS entry; nothing was installed" >&2
  exit 1
fi
tar -xzf "$work/$name.tar.gz" -C "$work"
mkdir -p "$dest/bin"
install -m 0755 "$work/$name/cargo-containerize" "$dest/bin/cargo-containerize"
publish "$dest/bin"
