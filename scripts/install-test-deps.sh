#!/usr/bin/env bash
# Installs what the test suite needs, only what is missing (idempotent, fast when present):
# Debian packages (registry, skopeo, umoci, oci-image-tool, podman + runc, qemu-user-static,
# musl-tools), Python validators, cargo-zigbuild + zig, the musl rustup targets,
# ferro-oci-server and cargo-cyclonedx.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# --with-referrers: ferro-oci-server (registry with the OCI referrers API) and
# --with-cargo-cyclonedx: the reference SBOM generator, both for tests/sbom.rs.
exec "$here/../tests/support/testkit/install-deps.sh" --with-referrers --with-cargo-cyclonedx "$@"
