//! `cargo containerize`: Cargo workspace → static musl binaries → distroless OCI images.
//!
//! The data flows through one stage per module, in this order (only [`pipeline`] knows
//! it; the folder of each stage is named on the arrow):
//!
//! ```text
//! cli::Cli ──config──▶ Settings ──workspace──▶ Workspace ──plan──▶ Plan
//!   Plan ──build──▶ BuiltBinary (per image × platform)
//!        ──image::layer / image::package──▶ LayerBlob, Image / Index (ImageSet)
//!        ──sbom──▶ CycloneDX / SPDX SBOMs per platform
//!        ──audit──▶ RustSec findings and CycloneDX vulnerabilities per platform (--audit)
//!        ──attest──▶ SLSA provenance per platform ──image::artifact──▶ referrer artifacts
//!        ──image::layout──▶ target/containerize/oci (the source of every sink)
//!        ──image::sink──▶ sinks, in plan order: --oci-layout-path, --tarball,
//!                         registry::sink (--push: blobs, manifests, tags, referrers),
//!                         load (--load: docker, podman or containerd)
//!        ──events──▶ image.json, --image-refs ──kube──▶ Kubernetes YAML
//!        ──output──▶ refs on stdout, status on stderr
//! ```
//!
//! `registry::pull` feeds `--base` into packaging; a new output is one more
//! [`image::sink::Sink`], a field of `plan::Outputs` and one line in `pipeline::sinks`.
//! Each stage takes plain values and returns plain values: `workspace` and `plan` never
//! build, `build` knows nothing about OCI, `image` never touches the network, and
//! `registry` knows nothing about cargo. Only [`output`] prints.
//!
//! # Layers
//!
//! Every module sits in one layer and imports only from its own layer or below, never up
//! (a `mod.rs` and its children may import each other). A unit test below reads the
//! sources and fails on an upward import, on a module with no layer, and on an import
//! loop between modules:
//!
//! ```text
//! layer 6  commands
//! layer 5  pipeline error
//! layer 4  build image registry sbom audit attest kube load compose
//! layer 3  workspace plan
//! layer 2  config
//! layer 1  cli output events exit canonical reference platform fsutil git interrupt metacache process
//! ```
//!
//! `main.rs` (the binary) stands on top of all of them. Layer 1 holds the leaves: clap
//! types, the shell and its events, exit codes and small helpers. `config` owns every
//! settings schema. `plan` fixes every output before anything runs; the stages read it.
//! `pipeline` is the only module that knows the order of the stages, and `commands` picks
//! what a subcommand runs.
#![deny(missing_docs)]

pub mod attest;
pub mod audit;
pub mod build;
pub mod canonical;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod config;
pub mod error;
pub mod events;
pub mod exit;
pub mod fsutil;
pub mod git;
pub mod image;
pub mod interrupt;
pub mod kube;
pub mod load;
pub mod metacache;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod process;
pub mod reference;
pub mod registry;
pub mod sbom;
pub mod workspace;

/// The tool's version, recorded in the built-in base layer and in layer cache keys.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The tool's name as users type it.
pub const TOOL_NAME: &str = "cargo-containerize";

/// Waits for a scoped helper thread (side-by-side subprocesses, parallel work) and passes
/// a panic on as if it had happened on the caller's thread.
pub(crate) fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[cfg(test)]
mod tests {
    //! The layer rule of the crate docs, checked against the sources.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// The `layer N  a b c` lines of the crate docs: module → layer.
    fn layers() -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        for line in include_str!("lib.rs").lines() {
            let Some(rest) = line.strip_prefix("//! layer ") else {
                continue;
            };
            let mut words = rest.split_whitespace();
            let n: u32 = words.next().and_then(|w| w.parse().ok()).unwrap();
            for module in words {
                out.insert(module.to_string(), n);
            }
        }
        out
    }

    /// Source with comments, strings and char literals blanked, so only code is searched.
    fn code_only(source: &str) -> String {
        let b = source.as_bytes();
        let mut out = String::with_capacity(source.len());
        let mut i = 0;
        while i < b.len() {
            let rest = &source[i..];
            if rest.starts_with("//") {
                i += rest.find('\n').unwrap_or(rest.len());
            } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
                let hashes = rest[1..].chars().take_while(|c| *c == '#').count();
                let close = format!("\"{}", "#".repeat(hashes));
                let body = 2 + hashes;
                i += body
                    + rest[body..]
                        .find(&close)
                        .map_or(rest.len(), |e| e + close.len());
                out.push_str("\"\"");
            } else if b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            } else if b[i] == b'\'' && (rest[1..].starts_with('\\') || rest[2..].starts_with('\''))
            {
                // A char literal ('"', '\n'), not a lifetime.
                i += 1 + rest[1..].find('\'').map_or(0, |e| e + 1);
                if rest[1..].starts_with("\\'") {
                    i += 1;
                }
                out.push_str("' '");
            } else {
                let c = rest.chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    }

    /// The top-level modules (or crate-root items) a file names through `crate::` paths,
    /// including each path of a `crate::{a::x, b}` group.
    fn imports(source: &str) -> BTreeSet<String> {
        let code = code_only(source);
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let mut out = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[i + "crate::".len()..];
            let Some(group) = rest.strip_prefix('{') else {
                out.insert(ident(rest));
                continue;
            };
            let (mut depth, mut start) = (0, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        }
        out.remove("");
        out
    }

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Top-level module of each file → the top-level modules it imports.
    fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let deps = graph.entry(module.clone()).or_default();
            deps.extend(imports(&text).into_iter().filter(|m| *m != module));
        }
        graph
    }

    #[test]
    fn no_module_imports_a_layer_above_its_own() {
        let layers = layers();
        // Items of the crate root (`join`, `TOOL_VERSION`) are below every layer.
        let root: BTreeSet<&str> = ["join", "TOOL_VERSION", "TOOL_NAME"].into();
        let mut upward = Vec::new();
        for (module, deps) in module_graph() {
            let Some(&own) = layers.get(&module) else {
                panic!("module `{module}` has no layer: add it to a `layer N` line in src/lib.rs");
            };
            for dep in deps.iter().filter(|d| !root.contains(d.as_str())) {
                let Some(&theirs) = layers.get(dep) else {
                    panic!("`{module}` imports `crate::{dep}`, which has no layer in src/lib.rs");
                };
                if theirs > own {
                    upward.push(format!(
                        "{module} (layer {own}) imports {dep} (layer {theirs})"
                    ));
                }
            }
        }
        assert!(
            upward.is_empty(),
            "upward imports:\n  {}",
            upward.join("\n  ")
        );
    }

    #[test]
    fn modules_import_each_other_without_a_loop() {
        let graph = module_graph();
        // Depth-first search; a module met again while still on the path closes a loop.
        fn visit<'a>(
            m: &'a str,
            graph: &'a BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<String> {
            if let Some(i) = path.iter().position(|p| *p == m) {
                return Some(format!("{} -> {m}", path[i..].join(" -> ")));
            }
            if !done.insert(m) {
                return None;
            }
            path.push(m);
            for dep in graph.get(m).into_iter().flatten() {
                if let Some(cycle) = visit(dep, graph, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for module in graph.keys() {
            if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
                panic!("import loop: {cycle}");
            }
        }
    }

    #[test]
    fn the_checks_see_every_kind_of_import() {
        let src = "use crate::a::X;\nuse crate::{b::{Y, Z}, c};\n// crate::d\nlet s = \"crate::e\";\nfn f<'a>(x: &'a crate::f::T) { let q = '\"'; crate::g(); }";
        let got: Vec<String> = imports(src).into_iter().collect();
        assert_eq!(got, ["a", "b", "c", "f", "g"]);
    }
}
