#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs missing prerequisites, checks formatting
# and lints, then runs every unit and integration test (real tools, no mocks).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-test-deps.sh
# pyenv/pip may install console scripts (cargo-zigbuild) where this shell's PATH has no entry yet.
for d in "$HOME/.local/bin" "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)"; do
  [ -n "$d" ] && [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
done
export PATH
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --no-fail-fast "$@"
