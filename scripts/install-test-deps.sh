#!/usr/bin/env bash
# Installs what the test suite needs, only what is missing (idempotent, fast when present):
# Debian packages (registry, skopeo, umoci, oci-image-tool, podman + runc, qemu-user-static,
# musl-tools), Python validators, cargo-zigbuild + zig, and the musl rustup targets.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../tests/support/testkit/install-deps.sh" "$@"
