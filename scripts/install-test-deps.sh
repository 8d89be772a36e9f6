#!/usr/bin/env bash
# Installs what the test suite needs, only what is missing (idempotent, fast when present):
# Debian packages (registry, skopeo, umoci, oci-image-tool, podman + runc, qemu-user-static,
# musl-tools, dockerd + containerd, docker-compose), podman-compose, Python validators (CycloneDX,
# SPDX, in-toto), cargo-zigbuild + zig, the musl rustup targets,
# ferro-oci-server and cargo-cyclonedx, rust-audit-info, cargo-audit and sigstore-js.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
# --with-referrers: ferro-oci-server (registry with the OCI referrers API) and
# --with-cargo-cyclonedx: the reference SBOM generator, both for tests/testsuite/sbom.rs.
# /usr/bin/time measures peak memory in tests/testsuite/push.rs (Debian's `time`, not the
# shell keyword); openssl makes the private CA for the TLS registry test.
# docker.io (Debian's dockerd 20.10 at /usr/sbin/dockerd) and containerd (containerd, ctr)
# for tests/testsuite/load.rs, which start their own daemons in temp dirs. Checked by the
# daemon's path, not `command -v docker`: a docker CLI elsewhere (e.g. /usr/local/bin) is
# not the daemon, and stays first on PATH after the install.
missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/sbin/dockerd ] || missing+=(docker.io)
{ [ -x /usr/bin/containerd ] && [ -x /usr/bin/ctr ]; } || missing+=(containerd)
# docker-compose (Debian's 1.29) brings up compose.yaml against the tests' dockerd.
[ -x /usr/bin/docker-compose ] || missing+=(docker-compose)
# zstd: the layout checker decompresses zstd layers with it (tests/testsuite/zstd.rs).
command -v zstd >/dev/null || missing+=(zstd)
# python3-venv: checkov gets a virtualenv of its own (below).
command -v checkov >/dev/null || python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  # The packages' maintainer scripts must not start a system dockerd/containerd (it would
  # take /var/run/docker.sock and /run/containerd): deny service starts through
  # policy-rc.d (honoured by invoke-rc.d and deb-systemd-invoke) unless the host has one.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from install-test-deps.sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if grep -q 'from install-test-deps.sh' "$policy" 2>/dev/null; then $SUDO rm -f "$policy"; fi
  trap - EXIT
fi
"$here/../tests/testsuite/support/testkit/install-deps.sh" --with-referrers --with-cargo-cyclonedx "$@"
# podman-compose (PyPI) brings up compose.yaml with podman (tests/testsuite/compose.rs).
# PEP 668 pythons (Debian's) refuse a plain pip install: then --break-system-packages.
if ! python3 -m pip show -q podman-compose >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check podman-compose 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages podman-compose
fi
# spdx-tools (PyPI: `pyspdxtools -i` validates the SPDX SBOMs) and in-toto-attestation (its
# protobuf Statement and SLSA Provenance v1 validators check the provenance), both for
# tests/testsuite/sbom.rs and provenance.rs; PyNaCl seals a cosign.key independently for
# tests/testsuite/sign.rs; installed the way podman-compose is.
for pkg in spdx-tools in-toto-attestation pynacl; do
  if ! python3 -m pip show -q "$pkg" >/dev/null 2>&1; then
    python3 -m pip install -q --disable-pip-version-check "$pkg" 2>/dev/null \
      || python3 -m pip install -q --disable-pip-version-check --break-system-packages "$pkg"
  fi
done
# checkov (PyPI) scans the Kubernetes YAML in tests/testsuite/checkov.rs. It pins many
# libraries of its own, so it gets a virtualenv of its own (no clash with the validators).
if ! command -v checkov >/dev/null; then
  $SUDO python3 -m venv /opt/checkov-venv
  $SUDO /opt/checkov-venv/bin/pip install -q --disable-pip-version-check 'checkov>=3.2,<4'
  $SUDO ln -sf /opt/checkov-venv/bin/checkov /usr/local/bin/checkov
fi
# kubectl (its built-in kustomize renders target/containerize in tests/testsuite/kustomize.rs).
# Debian's kubernetes-client is 1.20, whose kustomize is too old for `labels:`; take it
# from the Kubernetes package repository when it is missing.
if ! command -v kubectl >/dev/null; then
  echo "kubectl is missing: install kubectl 1.27 or newer (https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/)" >&2
  exit 1
fi
# The private-CA test reaches a loopback registry by this machine's hostname, which
# must resolve to 127.0.0.1 only; most hosts files say so, add it where one does not.
host=$(cat /proc/sys/kernel/hostname)
if [ "$(getent ahostsv4 "$host" 2>/dev/null | awk '{print $1}' | sort -u)" != "127.0.0.1" ] \
  || getent ahostsv6 "$host" 2>/dev/null | grep -qv '^::ffff:127.0.0.1'; then
  if ! grep -qE "^127\.0\.0\.1[[:space:]].*\b$host\b" /etc/hosts; then
    printf '127.0.0.1 %s\n' "$host" | $SUDO tee -a /etc/hosts >/dev/null
  fi
fi
# rust-audit-info (crates.io) reads the dependency list out of the binaries in the images.
if ! command -v rust-audit-info >/dev/null 2>&1; then
  cargo install --locked --quiet rust-audit-info
fi
# cargo-audit (crates.io), compared with `cargo containerize audit` on the same fixture
# advisory database (tests/testsuite/audit.rs).
if ! command -v cargo-audit >/dev/null 2>&1; then
  cargo install --locked --quiet cargo-audit
fi
# sigstore-js (npm), the independent verifier of the signature bundles
# (tests/testsuite/support/sigstore-verify.js, tests/testsuite/sign.rs), in a directory of
# its own; these versions need node 20.17 or newer.
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);console.log(a>20||(a===20&&b>=17)?1:0)' 2>/dev/null || echo 0)
if [ "$node_ok" != 1 ]; then
  echo "node 20.17 or newer is missing (sigstore-js needs it): install Node.js 20 or 22 (https://nodejs.org/en/download, or nodesource's Debian packages)" >&2
  exit 1
fi
sigstore_js="${XDG_CACHE_HOME:-$HOME/.cache}/cargo-containerize-tests/sigstore-js"
if [ ! -f "$sigstore_js/node_modules/@sigstore/verify/package.json" ]; then
  mkdir -p "$sigstore_js"
  timeout 600 npm install --silent --no-audit --no-fund --prefix "$sigstore_js" \
    @sigstore/bundle@4.0.0 @sigstore/verify@3.1.1 >/dev/null
fi
