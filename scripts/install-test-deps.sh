#!/usr/bin/env bash
# Installs what the test suite needs, only what is missing (idempotent, fast when present):
# Debian packages (registry, skopeo, umoci, oci-image-tool, podman + runc, qemu-user-static,
# musl-tools), Python validators, cargo-zigbuild + zig, the musl rustup targets,
# ferro-oci-server and cargo-cyclonedx.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# --with-referrers: ferro-oci-server (registry with the OCI referrers API) and
# --with-cargo-cyclonedx: the reference SBOM generator, both for tests/testsuite/sbom.rs.
# /usr/bin/time measures peak memory in tests/testsuite/push.rs (Debian's `time`, not the
# shell keyword); openssl makes the private CA for the TLS registry test.
missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
exec "$here/../tests/testsuite/support/testkit/install-deps.sh" --with-referrers --with-cargo-cyclonedx "$@"
