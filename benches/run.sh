#!/usr/bin/env bash
# Benchmarks for cargo containerize, measured side by side in one run on this machine:
#   1. packaging (binary -> OCI layout) vs the floor `gzip -6 | sha256sum` of the binary
#   2. the same image built by buildah from a FROM-scratch Dockerfile into an OCI layout
#   3. push to a local registry vs `skopeo copy` of our own layout; re-push of an unchanged image
#   4. no-op re-run vs the same cargo command alone, with and without the stored cargo
#      metadata, and paired run by run (benches/paired.py)
#   5. image overhead: compressed image minus compressed binary layer
#   6. peak RSS of packaging, small vs large binary (streaming: should not grow with size)
#   8. zstd vs gzip layers: packaging stage time and compressed binary layer size
#   9. merge of per-platform pushes (one runner per platform) vs one `--push --platform all`
# for the testdata service (testdata/hello-http) and a large binary (this repository
# itself, built with full debug info: tens of MB).
#
# Usage: benches/run.sh [--runs N] [--out FILE]     (default: 10 runs, BENCHMARKS.md)
# Needs: the test prerequisites (scripts/install-test-deps.sh) plus hyperfine and buildah
# (installed here with apt if missing). Takes 10-20 minutes, most of it building the large
# binary the first time.
set -euo pipefail

RUNS=10
OUT=BENCHMARKS.md
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "benches/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "bench: $*" >&2; }

# ---------- prerequisites ----------
scripts/install-test-deps.sh >&2
need=()
for t in hyperfine buildah; do command -v "$t" >/dev/null || need+=("$t"); done
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  log "apt: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

log "building cargo-containerize (release)"
cargo build --release --locked -q
TOOL="$ROOT/target/release/cargo-containerize"

# Kept between runs (in target/, ignored by git) so the large workload builds incrementally.
WORK="$ROOT/target/bench"
mkdir -p "$WORK"
RESULTS="$WORK/results"; rm -rf "$RESULTS"; mkdir -p "$RESULTS"
REG_DIR=""
cleanup() {
  [ -n "$REG_DIR" ] && tests/testsuite/support/testkit/registry.sh stop "$REG_DIR" >/dev/null 2>&1 || true
  rm -rf "$WORK/buildah-root" "$WORK/buildah-run" "$WORK"/*-ctx "$WORK/registry"
}
trap cleanup EXIT

# ---------- workloads ----------
rm -rf "$WORK/small/src" "$WORK/small/static"; mkdir -p "$WORK/small"
cp -r testdata/hello-http/. "$WORK/small/"
mkdir -p "$WORK/large"
# The committed tree (self-consistent even while the working tree is being edited), in
# place of the last run's (files since removed must go); its target/ is kept.
find "$WORK/large" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
git archive --format=tar HEAD -- . ':!testdata' | tar -x -C "$WORK/large"
cat >> "$WORK/large/Cargo.toml" <<'TOML'

[profile.bench-large]
inherits = "release"
debug = true
strip = "none"
TOML
export SOURCE_DATE_EPOCH=1700000000

declare -A PROFILE=([small]=release [large]=bench-large)
declare -A BIN=([small]=hello-http [large]=cargo-containerize)
for w in small large; do
  log "building the $w workload (first build is slow for the large one)"
  (cd "$WORK/$w" && "$TOOL" containerize --profile "${PROFILE[$w]}" -q >/dev/null)
done
binpath() { echo "$WORK/$1/target/x86_64-unknown-linux-musl/${PROFILE[$1]}/${BIN[$1]}"; }

hf() { # NAME CMD [hyperfine args...]: runs hyperfine, exports JSON
  local name="$1" cmd="$2"; shift 2
  hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$RESULTS/$name.json" "$@" "$cmd" >/dev/null 2>&1 \
    || { log "hyperfine failed for $name: $cmd"; hyperfine --runs 1 "$@" "$cmd" >&2; exit 1; }
}

# Pushes go to a registry started empty before every timed run (same port), so neither
# tool can mount blobs it saw in an earlier run (skopeo remembers them in its blob cache).
REG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REGISTRY="127.0.0.1:$REG_PORT"
RESET="$WORK/reset-registry.sh"
cat > "$RESET" <<RESET_EOF
#!/usr/bin/env bash
set -e
cd "$ROOT"
tests/testsuite/support/testkit/registry.sh stop "$WORK/registry" >/dev/null 2>&1 || true
rm -rf "$WORK/registry"
tests/testsuite/support/testkit/registry.sh start --auth none --port $REG_PORT --dir "$WORK/registry" >/dev/null 2>&1
RESET_EOF
chmod +x "$RESET"
"$RESET"; REG_DIR="$WORK/registry"

for w in small large; do
  dir="$WORK/$w"; bin="$(binpath "$w")"; prof="${PROFILE[$w]}"; name="${BIN[$w]}"
  stat -c %s "$bin" > "$RESULTS/$w.binsize"
  log "$w: $(numfmt --to=iec "$(cat "$RESULTS/$w.binsize")") binary"

  # 1. floor vs our packaging (cold: no cached layers, no layout)
  hf "$w-floor" "sh -c 'gzip -6 -c $bin | sha256sum >/dev/null'"
  hf "$w-package" "$TOOL containerize --manifest-path $dir/Cargo.toml --profile $prof -q" --prepare "rm -rf $dir/target/containerize"
  # the packaging stage alone, as the tool reports it with -v
  for _ in $(seq "$RUNS"); do
    rm -rf "$dir/target/containerize"
    "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" -v 2>&1 >/dev/null \
      | sed -n 's/.*Timing packaging .*: \([0-9.]*\)s.*/\1/p'
  done > "$RESULTS/$w-stage.txt"

  # 8. the same packaging stage with zstd layers, and both binary layers' sizes
  for _ in $(seq "$RUNS"); do
    rm -rf "$dir/target/containerize"
    "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" --compression zstd -v 2>&1 >/dev/null \
      | sed -n 's/.*Timing packaging .*: \([0-9.]*\)s.*/\1/p'
  done > "$RESULTS/$w-stage-zstd.txt"
  layer_size() {
    python3 - "$dir/target/containerize" "$name" <<'PY'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1]); s = json.loads((root / sys.argv[2] / "image.json").read_text())
m = json.loads((root / "oci/blobs/sha256" / s["platforms"][0]["digest"].split(":")[1]).read_text())
print(m["layers"][-1]["size"])
PY
  }
  layer_size > "$RESULTS/$w.zstd-layer"
  rm -rf "$dir/target/containerize"
  "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" -q >/dev/null

  # 4. no-op re-run vs the very `cargo build` command it runs (as `-v` shows it, run in the
  #    workspace root), alone; and pair by pair, A B A B ..., for the difference
  "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" -q >/dev/null
  noop="$TOOL containerize --manifest-path $dir/Cargo.toml --profile $prof"
  cargo_cmd=$($noop -v 2>&1 >/dev/null | sed -n 's/^ *Running `\(.*\)` (.*)$/\1/p' | head -1)
  [ -n "$cargo_cmd" ] || { log "$w: no cargo command in the -v output"; exit 1; }
  cargo_cmd="cd $dir && $cargo_cmd"
  hf "$w-noop" "$noop"
  # the same with the stored `cargo metadata` answers removed before each run (what a
  # no-op cost before they were stored)
  hf "$w-noop-uncached" "$noop" --prepare "rm -rf $dir/target/containerize/cache/metadata"
  hf "$w-cargo-noop" "$cargo_cmd"
  benches/paired.py --runs $((RUNS * 8)) --out "$RESULTS/$w-noop-paired.json" "$noop" "$cargo_cmd"

  # 2. buildah, FROM scratch with the same files, into an OCI layout
  ctx="$WORK/$w-ctx"; mkdir -p "$ctx"
  cp "$bin" "$ctx/app"
  layer=$(python3 - "$dir/target/containerize/oci" <<'PY'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1])
idx = json.loads((root / "index.json").read_text())
m = json.loads((root / "blobs/sha256" / idx["manifests"][0]["digest"].split(":")[1]).read_text())
print(m["layers"][0]["digest"].split(":")[1])
PY
)
  tar -xzf "$dir/target/containerize/oci/blobs/sha256/$layer" -C "$ctx" etc
  cat > "$ctx/Dockerfile" <<DOCKER
FROM scratch
COPY etc/passwd etc/group etc/nsswitch.conf /etc/
COPY etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY app /app/$name
USER 65532:65532
ENTRYPOINT ["/app/$name"]
DOCKER
  B="buildah --root $WORK/buildah-root --runroot $WORK/buildah-run --storage-driver vfs"
  hf "$w-buildah" "sh -c '$B build --quiet --isolation chroot --layers=false -t bench-$w $ctx >/dev/null && $B push --quiet bench-$w oci:$WORK/$w-buildah-oci:latest && rm -rf $WORK/$w-buildah-oci'"

  # 3. push (fresh repository each run) vs skopeo copy of our own layout
  hf "$w-push" "$TOOL containerize --manifest-path $dir/Cargo.toml --profile $prof -q --push --repo $REGISTRY/ours" --prepare "$RESET"
  hf "$w-skopeo" "skopeo copy -q --dest-tls-verify=false oci:$dir/target/containerize/oci:$name:latest docker://$REGISTRY/skopeo/$name:latest" --prepare "$RESET"
  # the push stage alone, as the tool reports it with -v: with the defaults (3 tags and the
  # SBOM artifact), and doing what skopeo does (the image and one tag, no SBOM)
  push_stage() {
    local repo="$1"; shift
    "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" -v --push --repo "$REGISTRY/$repo" "$@" 2>&1 >/dev/null \
      | sed -n 's/.*Timing push (images and SBOMs): \([0-9.]*\)s.*/\1/p'
  }
  for _ in $(seq "$RUNS"); do "$RESET"; push_stage ours; done > "$RESULTS/$w-push-stage.txt"
  for _ in $(seq "$RUNS"); do "$RESET"; push_stage ours -t latest --sbom none; done > "$RESULTS/$w-push-stage-same.txt"
  "$RESET"; REG_DIR="$WORK/registry"
  "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" -q --push --repo "$REGISTRY/again" >/dev/null
  hf "$w-repush" "$TOOL containerize --manifest-path $dir/Cargo.toml --profile $prof -q --push --repo $REGISTRY/again"
  benches/paired.py --runs $((RUNS * 4)) --out "$RESULTS/$w-repush-paired.json" \
    "$TOOL containerize --manifest-path $dir/Cargo.toml --profile $prof --push --repo $REGISTRY/again" "$cargo_cmd"
  for _ in $(seq "$RUNS"); do push_stage again; done > "$RESULTS/$w-repush-stage.txt"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pushed"]["uploaded_bytes"])' \
    "$dir/target/containerize/$name/image.json" > "$RESULTS/$w.repush-bytes"

  # 5. overhead
  python3 - "$dir/target/containerize" "$name" > "$RESULTS/$w.sizes" <<'PY'
import json, sys, pathlib
root = pathlib.Path(sys.argv[1]); name = sys.argv[2]
s = json.loads((root / name / "image.json").read_text())
m = json.loads((root / "oci/blobs/sha256" / s["platforms"][0]["digest"].split(":")[1]).read_text())
image = s["platforms"][0]["compressed_size"]
binlayer = m["layers"][-1]["size"]
print(image, binlayer, m["layers"][0]["size"])
PY

  # 6. peak RSS of a cold packaging run: our process alone (as it reports with -v), and
  #    the whole process tree including cargo's no-op build (/usr/bin/time).
  rm -rf "$dir/target/containerize"
  /usr/bin/time -f %M -o "$RESULTS/$w.rss" "$TOOL" containerize --manifest-path "$dir/Cargo.toml" --profile "$prof" -v 2>&1 >/dev/null \
    | sed -n 's/.*peak RSS of this process: \([0-9.]*\) MiB.*/\1/p' > "$RESULTS/$w.self-rss"
done

# 7. memory is flat in layer size: the same service, once with a 16 MiB and once with a
#    256 MiB asset (cut from the large binary), packaged cold; our own peak RSS from -v.
flat="$WORK/flat"; rm -rf "$flat/src" "$flat/assets"; mkdir -p "$flat/assets"
cp -r testdata/hello-http/. "$flat/"
printf 'assets = "assets"\n' >> "$flat/Cargo.toml"   # the last table is [package.metadata.containerize]
for mb in 16 256; do
  head -c "${mb}M" "$(binpath large)" > "$flat/assets/blob"
  rm -rf "$flat/target/containerize"
  "$TOOL" containerize --manifest-path "$flat/Cargo.toml" -v 2>&1 >/dev/null \
    | sed -n 's/.*peak RSS of this process: \([0-9.]*\) MiB.*/\1/p' > "$RESULTS/flat-$mb.self-rss"
done

# 9. Two platforms of the small service: `merge` of what `--push --per-platform` pushed
#    (the split CI design: each runner pushes its platform, a last job joins them) against
#    pushing `--platform all` from one machine. Both start from a registry reset before each
#    timed run; the per-platform pushes are part of merge's preparation, not its time.
small="$WORK/small"
"$TOOL" containerize --manifest-path "$small/Cargo.toml" --platform all -q >/dev/null
PREP_SPLIT="$WORK/prepare-split.sh"
cat > "$PREP_SPLIT" <<PREP_EOF
#!/usr/bin/env bash
set -e
"$RESET"
"$TOOL" containerize --manifest-path "$small/Cargo.toml" --platform all -q --push --per-platform --repo "$REGISTRY/split" >/dev/null
PREP_EOF
chmod +x "$PREP_SPLIT"
hf "small-merge" "$TOOL containerize merge --manifest-path $small/Cargo.toml --platform all -q --repo $REGISTRY/split" --prepare "$PREP_SPLIT"
hf "small-push-all" "$TOOL containerize --manifest-path $small/Cargo.toml --platform all -q --push --repo $REGISTRY/one" --prepare "$RESET"
"$RESET"

log "writing $OUT"
python3 benches/report.py "$RESULTS" "$RUNS" > "$OUT"
log "done: $OUT"
