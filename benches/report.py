#!/usr/bin/env python3
"""Writes BENCHMARKS.md (on stdout) from the results directory benches/run.sh fills.

Usage: report.py RESULTS_DIR RUNS > BENCHMARKS.md
"""
import json, pathlib, platform, statistics, subprocess, sys
R = pathlib.Path(sys.argv[1]); runs = sys.argv[2]
def t(name):
    d = json.loads((R / f"{name}.json").read_text())["results"][0]
    return d["median"], d["min"], d["max"]
def fmt(x): return f"{x:.3f}"
NOTES = """
## Reading the numbers

- The floor is single-threaded `gzip -6`; the tool compresses layers on every core
  (1 MiB blocks, pigz-style, deterministic), so on this 2-core machine its packaging stage
  is well under the floor. The stage also hashes the tar stream and the compressed stream
  (sha256) in the same pass and writes the blob once.
- "Push stage" is what the tool reports with `-v` for the upload itself. `skopeo copy`
  pushes the image and one tag; the tool's defaults also set the version and commit tags
  and attach the SBOM (an artifact manifest, its blobs, and the referrers tag on this
  registry), which on a tiny image is most of the requests. The goal row compares the same
  work (`-t latest --sbom none`). The whole `--push` process also runs `cargo build` (a
  no-op here), `cargo metadata` and the local packaging check; those fixed costs are the
  "no-op re-run" row.
- The no-op and re-push figures beyond cargo are medians of differences taken pair by
  pair: the tool, then the very `cargo build` command it runs (as `-v` shows it), in turn.
  The hyperfine rows of the same commands are measured minutes apart, and on this shared
  machine cargo's own no-op drifts between such sets by more than the difference being
  measured; the pairs do not drift apart. The quartiles say how noisy the pairs were.
- The unchanged re-push asks the registry for the manifest digest (HEAD) and each tag, and
  writes nothing. The rest of its time is the no-op run: `cargo build` and `cargo metadata`
  (twice: the workspace, then the target-filtered graph for the SBOM, alongside the build),
  which grow with the dependency graph (hundreds of packages for the large workload).
- Peak RSS: the large workload's figure is higher than the small one's because of its
  dependency graph (the `cargo metadata` documents held in memory), not its binary; the
  "memory against layer size" table packages the same workspace with a 16× larger layer
  and stays flat. What the layer adds is a fixed set of in-flight gzip blocks
  (threads + 1, 1 MiB each).
"""
def row(label, name):
    med, lo, hi = t(name)
    return f"| {label} | {fmt(med)} | {fmt(lo)} | {fmt(hi)} |"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
mem = next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal"))
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print("# Benchmarks\n")
print("Produced by `benches/run.sh` (rerun it to refresh this file). Every figure in one table was")
print(f"measured in the same run, side by side, with hyperfine ({runs} runs after a warm-up; median, min, max in seconds).\n")
print(f"Machine: {cpu}, {cores} cores, {int(mem)//1024//1024} GiB RAM, {platform.system()} {platform.release()}.\n")
for w, label in (("small", "testdata/hello-http"), ("large", "this repository's own binary with debug info")):
    size = int((R / f"{w}.binsize").read_text())
    stage = [float(x) for x in (R / f"{w}-stage.txt").read_text().split()]
    push_stage = [float(x) for x in (R / f"{w}-push-stage.txt").read_text().split()]
    push_same = [float(x) for x in (R / f"{w}-push-stage-same.txt").read_text().split()]
    repush_stage = [float(x) for x in (R / f"{w}-repush-stage.txt").read_text().split()]
    floor = t(f"{w}-floor")[0]
    image, binlayer, base = map(int, (R / f"{w}.sizes").read_text().split())
    rss = int((R / f"{w}.rss").read_text().split()[-1])
    self_rss = float((R / f"{w}.self-rss").read_text().split()[0])
    print(f"## {label}: {size/1024/1024:.1f} MiB static x86_64 binary\n")
    print("| command | median | min | max |\n|---|---|---|---|")
    print(row("floor: `gzip -6 \\| sha256sum` of the binary", f"{w}-floor"))
    print(row("`cargo containerize`, cold (no cached layer, no layout; includes cargo's no-op build)", f"{w}-package"))
    print(f"| packaging stage alone (binary → OCI layout, from `-v`) | {fmt(statistics.median(stage))} | {fmt(min(stage))} | {fmt(max(stage))} |")
    print(row("buildah: FROM scratch + COPY, build and push to an OCI layout", f"{w}-buildah"))
    print(row("`cargo containerize --push` to a fresh repository (includes cargo's no-op build)", f"{w}-push"))
    print(f"| push stage alone, defaults: 3 tags + SBOM artifact (from `-v`) | {fmt(statistics.median(push_stage))} | {fmt(min(push_stage))} | {fmt(max(push_stage))} |")
    print(f"| push stage alone, what skopeo does: `-t latest --sbom none` (from `-v`) | {fmt(statistics.median(push_same))} | {fmt(min(push_same))} | {fmt(max(push_same))} |")
    print(row("`skopeo copy` of our OCI layout to a fresh repository", f"{w}-skopeo"))
    print(row("`cargo containerize --push` again, unchanged", f"{w}-repush"))
    print(f"| push stage of that unchanged re-push (from `-v`) | {fmt(statistics.median(repush_stage))} | {fmt(min(repush_stage))} | {fmt(max(repush_stage))} |")
    print(row("`cargo containerize` no-op re-run", f"{w}-noop"))
    print(row("`cargo containerize` no-op re-run without the stored `cargo metadata` answers", f"{w}-noop-uncached"))
    print(row("the `cargo build` command the tool runs, alone (no-op)", f"{w}-cargo-noop"))
    zstd_stage = [float(x) for x in (R / f"{w}-stage-zstd.txt").read_text().split()]
    print(f"| packaging stage alone with `--compression zstd` (from `-v`) | {fmt(statistics.median(zstd_stage))} | {fmt(min(zstd_stage))} | {fmt(max(zstd_stage))} |")
    print()
    paired = json.loads((R / f"{w}-noop-paired.json").read_text())
    q = statistics.quantiles(paired["diff"], n=4)
    print("| ratio / figure | value | goal |\n|---|---|---|")
    print(f"| packaging stage / floor | {statistics.median(stage)/floor:.2f} | ≤ 1.3 |")
    print(f"| cold run / floor (whole process) | {t(f'{w}-package')[0]/floor:.2f} | — |")
    print(f"| cold run / buildah | {t(f'{w}-package')[0]/t(f'{w}-buildah')[0]:.2f} | < 0.5 |")
    print(f"| push stage / skopeo copy, same work (image + 1 tag) | {statistics.median(push_same)/t(f'{w}-skopeo')[0]:.2f} | ≤ 1.0 |")
    print(f"| push stage with the defaults (3 tags + SBOM) / skopeo copy | {statistics.median(push_stage)/t(f'{w}-skopeo')[0]:.2f} | — |")
    print(f"| whole push process / skopeo copy (ours also runs cargo and writes the image) | {t(f'{w}-push')[0]/t(f'{w}-skopeo')[0]:.2f} | — |")
    print(f"| re-push of an unchanged image: push stage | {fmt(statistics.median(repush_stage))} s, {(R / f'{w}.repush-bytes').read_text().strip()} blob bytes | < 0.2 s, 0 bytes |")
    repush = json.loads((R / f"{w}-repush-paired.json").read_text())
    print(f"| re-push of an unchanged image: whole process beyond the cargo command it runs (median of {len(repush['diff'])} paired differences) | {statistics.median(repush['diff']):.3f} s | — |")
    print(f"| no-op re-run beyond the cargo command it runs: median of {len(paired['diff'])} paired differences (quartiles) | {statistics.median(paired['diff']):.3f} s ({q[0]:.3f} … {q[2]:.3f}) | < 0.05 s |")
    print(f"| no-op re-run beyond the cargo command it runs, `cargo metadata` run again (before it was stored; medians) | {t(f'{w}-noop-uncached')[0] - t(f'{w}-cargo-noop')[0]:.3f} s | — |")
    print(f"| image overhead (compressed image − compressed binary layer) | {(image-binlayer)/1024:.1f} KiB (base layer {base/1024:.1f} KiB) | ≤ 150 KiB |")
    print(f"| peak RSS of cargo-containerize itself, cold packaging run | {self_rss:.1f} MiB | flat in binary size |")
    print(f"| peak RSS of the process tree (includes cargo's no-op build) | {rss/1024:.1f} MiB | — |")
    zstd_layer = int((R / f"{w}.zstd-layer").read_text())
    print(f"| zstd / gzip packaging stage time | {statistics.median(zstd_stage)/statistics.median(stage):.2f} | — |")
    print(f"| binary layer, zstd / gzip size | {zstd_layer/1024/1024:.2f} / {binlayer/1024/1024:.2f} MiB = {zstd_layer/binlayer:.2f} | — |")
    print()
print("## One runner per platform: `merge` against one `--push --platform all`\n")
print("testdata/hello-http for linux/amd64 and linux/arm64 (both built beforehand), a registry")
print("started empty before each timed run. `merge` joins what `--push --per-platform` pushed")
print("(those pushes are its preparation, untimed): it reads two manifests and configs back,")
print("pushes the index and three tags, and writes the YAML; it uploads no blob.\n")
print("| command | median | min | max |\n|---|---|---|---|")
print(row("`cargo containerize merge --platform all` (index + tags)", "small-merge"))
print(row("`cargo containerize --push --platform all` (both platforms, index, tags, SBOMs)", "small-push-all"))
print()
print("| ratio | value |\n|---|---|")
print(f"| merge / push --platform all | {t('small-merge')[0]/t('small-push-all')[0]:.2f} |")
print()
print("## Memory against layer size\n")
print("Peak RSS of cargo-containerize itself (from `-v`), packaging testdata/hello-http cold with an")
print("assets directory holding one file of the given size (so the workspace is the same):\n")
print("| layer content | peak RSS |\n|---|---|")
for mb in (16, 256):
    print(f"| hello-http + {mb} MiB asset | {float((R / f'flat-{mb}.self-rss').read_text().split()[0]):.1f} MiB |")
print()
print("For comparison, `gcr.io/distroless/static-debian12` is about 2 MiB compressed (its published size),")
print("so a distroless-based image carries roughly 2 MiB on top of the binary.")
print(NOTES)
