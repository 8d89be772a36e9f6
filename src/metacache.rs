//! `cargo metadata` output, cached between runs: an unchanged re-run reads the JSON it
//! stored instead of spawning cargo (which resolves the whole graph again: a third of a
//! second on a few hundred packages).
//!
//! An entry is found by a key over everything that shapes the command's output before it
//! runs: the program and its arguments (manifest path, `--filter-platform`, features,
//! `--locked`/`--offline`), the working directory, and the environment cargo and rustup
//! read (every `CARGO_*` and `RUSTUP_*` variable, `RUSTC*`, `RUSTFLAGS`, `PATH`). It is
//! used only while every file that could change the output is as it was when the entry was
//! written: mtime, size and sha256 of `Cargo.lock`, of the `Cargo.toml` of every package on
//! disk (workspace members and path dependencies), of the cargo configuration and
//! toolchain files (`.cargo/config*` and `rust-toolchain*` in the working directory and its
//! ancestors, `$CARGO_HOME/config*`; absent ones must still be absent) and rustup's
//! settings; and the entry names (not mtimes: `target/` appearing changes those) of each
//! such package's directory and the directories between it and the workspace root (a new
//! member under a `members = ["crates/*"]` glob), and of its `src/`, `src/bin/`,
//! `examples/`, `tests/` and `benches/` (a new `build.rs` or `src/bin/*.rs` adds a target
//! without touching a manifest). Anything else is a miss, never a stale answer.
//!
//! Entries live in `<target-dir>/containerize/cache/metadata/`, next to the layer cache;
//! a lookup tries `CARGO_TARGET_DIR`, then `target/` in the manifest's directory and each
//! of its ancestors (where the workspace's target directory usually is).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Whether an answer came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Read from a valid entry; cargo was not run.
    Cached,
    /// cargo ran (and its output was stored, if it succeeded).
    Ran,
}

/// A new entry, written only by [`Pending::save`]: the caller saves it once the answer
/// proved usable (a workspace whose configuration parses), and a plan or dry run, which
/// writes nothing, never does.
#[derive(Debug, Clone)]
pub struct Pending {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Pending {
    /// Writes the entry; a cache that cannot be written is only a slower next run.
    pub fn save(self) {
        let _ = crate::fsutil::write_atomic(&self.path, &self.bytes);
    }
}

/// What an entry records about one input path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Stamp {
    /// The path did not exist.
    Absent,
    /// A directory: sha256 of its sorted entry names, leaving out hidden ones and the
    /// target directory (which come and go without changing cargo's answer).
    Dir(String),
    /// A file: mtime (nanoseconds), size and sha256.
    File(i128, u64, String),
}

/// An entry's file: this as one JSON line, then the command's stdout byte for byte (not
/// a JSON string: a stored answer is read without unescaping megabytes).
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The target directory, left out of directory listings.
    target_dir: PathBuf,
    stamps: BTreeMap<PathBuf, Stamp>,
}

impl Entry {
    fn encode(&self, stdout: &[u8]) -> Option<Vec<u8>> {
        let mut out = serde_json::to_vec(self).ok()?;
        out.push(b'\n');
        out.extend_from_slice(stdout);
        Some(out)
    }

    /// The entry and the stdout it stores, if every input is still as it was stamped.
    fn fresh(mut bytes: Vec<u8>) -> Option<(Self, Vec<u8>)> {
        let end = bytes.iter().position(|&b| b == b'\n')?;
        let entry: Entry = serde_json::from_slice(&bytes[..end]).ok()?;
        if !entry
            .stamps
            .iter()
            .all(|(p, s)| still(p, s, &entry.target_dir))
        {
            return None;
        }
        bytes.drain(..=end);
        Some((entry, bytes))
    }
}

/// Entries this tool version wrote, and nothing else, are read.
const FORMAT: &str = concat!("metacache-3:", env!("CARGO_PKG_VERSION"));

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_nanos() as i128)
}

/// The names in `dir` that can be a package or a target, sorted and hashed.
fn listing(dir: &Path, target_dir: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .filter(|e| e.path() != target_dir)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        h.update(n.as_encoded_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Now, in the nanoseconds [`Stamp::File`] records.
fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Whether a file of `stamps` was modified at or after `started` (while the command
/// ran): then what the command read may not be what was stamped.
fn changed_since(stamps: &BTreeMap<PathBuf, Stamp>, started: i128) -> bool {
    stamps.values().any(|s| match s {
        Stamp::File(t, ..) => *t >= started,
        Stamp::Dir(_) | Stamp::Absent => false,
    })
}

/// A successful run's output, from a stored answer.
fn stored_output(stdout: Vec<u8>) -> Output {
    use std::os::unix::process::ExitStatusExt;
    Output {
        status: std::process::ExitStatus::from_raw(0),
        stdout,
        stderr: Vec::new(),
    }
}

/// The toolchain files an answer of cargo or rustup run in `cwd` depends on: rustup's
/// settings (default toolchain, overrides), its toolchains and each one's installed
/// components, and `rust-toolchain` files in `cwd` and its ancestors.
pub fn toolchain_inputs(cwd: &Path, env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let home = env.get("HOME").map(PathBuf::from);
    if let Some(rustup) = env
        .get("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".rustup")))
    {
        let toolchains = rustup.join("toolchains");
        let mut components: Vec<PathBuf> = std::fs::read_dir(&toolchains)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("lib/rustlib/components"))
            .collect();
        components.sort();
        out.extend([rustup.join("settings.toml"), toolchains]);
        out.extend(components);
    }
    for dir in cwd.ancestors() {
        out.extend([dir.join("rust-toolchain.toml"), dir.join("rust-toolchain")]);
    }
    out
}

fn stamp(path: &Path, target_dir: &Path) -> Stamp {
    let Ok(meta) = std::fs::metadata(path) else {
        return Stamp::Absent;
    };
    if meta.is_dir() {
        return Stamp::Dir(listing(path, target_dir));
    }
    let hash =
        std::fs::read(path).map_or_else(|_| String::new(), |b| hex::encode(Sha256::digest(&b)));
    Stamp::File(mtime_ns(&meta), meta.len(), hash)
}

/// Whether `path` still matches `recorded`; the content is hashed only when mtime and
/// size already match.
fn still(path: &Path, recorded: &Stamp, target_dir: &Path) -> bool {
    match (recorded, std::fs::metadata(path)) {
        (Stamp::Absent, Err(_)) => true,
        (Stamp::Dir(names), Ok(m)) => m.is_dir() && listing(path, target_dir) == *names,
        (Stamp::File(t, len, hash), Ok(m)) => {
            m.is_file()
                && mtime_ns(&m) == *t
                && m.len() == *len
                && std::fs::read(path).is_ok_and(|b| hex::encode(Sha256::digest(&b)) == *hash)
        }
        _ => false,
    }
}

/// The environment `cmd` runs with: the caller's `env` (what cargo reads) with the
/// command's own changes applied.
fn effective_env(cmd: &Command, env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = env.clone();
    for (k, v) in cmd.get_envs() {
        let k = k.to_string_lossy().into_owned();
        match v {
            Some(v) => env.insert(k, v.to_string_lossy().into_owned()),
            None => env.remove(&k),
        };
    }
    env
}

fn key(cmd: &Command, env: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(FORMAT.as_bytes());
    part(cmd.get_program().as_encoded_bytes());
    for a in cmd.get_args() {
        part(a.as_encoded_bytes());
    }
    part(cwd_of(cmd).as_os_str().as_encoded_bytes());
    for (k, v) in env {
        part(k.as_bytes());
        part(v.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The `--manifest-path` argument of `cmd`, if any.
fn manifest_arg(cmd: &Command) -> Option<PathBuf> {
    let args: Vec<&OsStr> = cmd.get_args().collect();
    args.windows(2)
        .find(|w| w[0] == "--manifest-path")
        .map(|w| PathBuf::from(w[1]))
}

fn cwd_of(cmd: &Command) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    match cmd.get_current_dir() {
        Some(d) => cwd.join(d),
        None => cwd,
    }
}

/// Directories an entry for `cmd` may be in, most likely first.
fn lookup_dirs(cmd: &Command, env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    let cwd = cwd_of(cmd);
    let start = manifest_arg(cmd)
        .map(|m| cwd.join(m))
        .and_then(|m| m.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| cwd.clone());
    let mut dirs = Vec::new();
    if let Some(t) = env.get("CARGO_TARGET_DIR") {
        dirs.push(cwd.join(t));
    }
    dirs.extend(start.ancestors().map(|a| a.join("target")));
    dirs.into_iter()
        .map(|t| t.join("containerize/cache/metadata"))
        .collect()
}

/// The files and directories whose state an answer depends on, from cargo's answer.
fn inputs(
    cmd: &Command,
    env: &BTreeMap<String, String>,
    stdout: &[u8],
) -> Option<(Vec<PathBuf>, PathBuf)> {
    #[derive(Deserialize)]
    struct Pkg {
        manifest_path: PathBuf,
        source: Option<String>,
    }
    #[derive(Deserialize)]
    struct Meta {
        packages: Vec<Pkg>,
        workspace_root: PathBuf,
        target_directory: PathBuf,
    }
    let meta: Meta = serde_json::from_slice(stdout).ok()?;
    let mut paths = vec![
        meta.workspace_root.join("Cargo.lock"),
        meta.workspace_root.join("Cargo.toml"),
    ];
    for p in meta.packages.iter().filter(|p| p.source.is_none()) {
        paths.push(p.manifest_path.clone());
        let Some(dir) = p.manifest_path.parent() else {
            continue;
        };
        // Auto-discovered targets: a new file here adds one without touching a manifest.
        for sub in ["src", "src/bin", "examples", "tests", "benches"] {
            paths.push(dir.join(sub));
        }
        // The package's directory and those between it and the workspace root: a new
        // directory under `crates/` is a new member of `members = ["crates/*"]`.
        paths.extend(
            dir.ancestors()
                .take_while(|a| a.starts_with(&meta.workspace_root))
                .map(Path::to_path_buf),
        );
    }
    let cwd = cwd_of(cmd);
    for dir in cwd.ancestors().chain(meta.workspace_root.ancestors()) {
        for f in [
            ".cargo/config.toml",
            ".cargo/config",
            "rust-toolchain.toml",
            "rust-toolchain",
        ] {
            paths.push(dir.join(f));
        }
    }
    paths.extend(toolchain_inputs(&cwd, env));
    let home = env.get("HOME").map(PathBuf::from);
    let cargo_home = env
        .get("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    if let Some(c) = cargo_home {
        paths.extend([c.join("config.toml"), c.join("config")]);
    }
    paths.sort();
    paths.dedup();
    Some((paths, meta.target_directory))
}

fn read_entry(cmd: &Command, env: &BTreeMap<String, String>, key: &str) -> Option<Vec<u8>> {
    for dir in lookup_dirs(cmd, env) {
        let Ok(bytes) = std::fs::read(dir.join(format!("{key}.entry"))) else {
            continue;
        };
        return Entry::fresh(bytes).map(|(_, stdout)| stdout);
    }
    None
}

/// Runs `cmd` (a `cargo metadata` command), or answers from a valid cache entry. `env`
/// holds the variables of this process that cargo, rustup and rustc read. A run of cargo
/// that succeeded comes with the entry to [`Pending::save`]; a failed one has none. The
/// entry stores what `distill` keeps of cargo's stdout (the parts the caller reads, so a
/// stored answer is quick to parse), and is the stdout of a cached answer.
pub fn output(
    cmd: &mut Command,
    env: &BTreeMap<String, String>,
    distill: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> std::io::Result<(Output, Answer, Option<Pending>)> {
    let env = effective_env(cmd, env);
    let key = key(cmd, &env);
    if let Some(stdout) = read_entry(cmd, &env, &key) {
        return Ok((stored_output(stdout), Answer::Cached, None));
    }
    let started = now_ns();
    let out = cmd.output()?;
    let mut pending = None;
    if out.status.success()
        && let Some((paths, target_dir)) = inputs(cmd, &env, &out.stdout)
    {
        let stamps: BTreeMap<PathBuf, Stamp> = paths
            .into_iter()
            .map(|p| {
                let s = stamp(&p, &target_dir);
                (p, s)
            })
            .collect();
        // A file changed while cargo ran may not be what cargo read: store nothing.
        if !changed_since(&stamps, started) {
            let dir = target_dir.join("containerize/cache/metadata");
            let entry = Entry { target_dir, stamps };
            if let Some(bytes) = distill(&out.stdout).and_then(|kept| entry.encode(&kept)) {
                pending = Some(Pending {
                    path: dir.join(format!("{key}.entry")),
                    bytes,
                });
            }
        }
    }
    Ok((out, Answer::Ran, pending))
}

/// Runs `cmd` (a command whose answer depends only on the files and directories
/// `inputs`, the working directory and `env`), or answers from its entry in `dir`, valid
/// while every input is as it was. A successful answer is stored at once. For `rustup
/// target list --installed`, which a no-op run would otherwise pay for every time.
pub fn output_in(
    cmd: &mut Command,
    env: &BTreeMap<String, String>,
    inputs: &[PathBuf],
    dir: &Path,
) -> std::io::Result<(Output, Answer)> {
    let env = effective_env(cmd, env);
    let path = dir.join(format!("{}.entry", key(cmd, &env)));
    if let Ok(bytes) = std::fs::read(&path)
        && let Some((entry, stdout)) = Entry::fresh(bytes)
        && inputs.iter().all(|p| entry.stamps.contains_key(p))
    {
        return Ok((stored_output(stdout), Answer::Cached));
    }
    let started = now_ns();
    // No target directory to leave out of listings.
    let none = Path::new("");
    let stamps: BTreeMap<PathBuf, Stamp> =
        inputs.iter().map(|p| (p.clone(), stamp(p, none))).collect();
    let out = cmd.output()?;
    if out.status.success()
        && !changed_since(&stamps, started)
        && let Some(bytes) = (Entry {
            target_dir: none.to_path_buf(),
            stamps,
        })
        .encode(&out.stdout)
    {
        let _ = crate::fsutil::create_dir_all(dir);
        let _ = crate::fsutil::write_atomic(&path, &bytes);
    }
    Ok((out, Answer::Ran))
}
