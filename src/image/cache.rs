//! Input hash → cached [`LayerBlob`]: a re-run with an unchanged binary reuses its
//! compressed layer instead of gzipping it again. Entries are small JSON files under
//! `target/containerize/cache/layers/`, keyed by the sha256 of everything that shapes the
//! layer bytes; the blobs themselves live in the layout. Safe to delete at any time.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};

use crate::fsutil::{self, FsError};
use crate::image::LayerBlob;
use crate::image::layout::Layout;

/// The layer cache directory.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    hashes: PathBuf,
}

/// What identifies a file's content without reading it: path, size, mtime, ctime, inode
/// and device (what cargo's own fingerprints rely on). A rebuilt binary changes them.
pub fn stat_key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let abs = std::fs::canonicalize(path).ok()?;
    Some(format!(
        "{}:{}:{}.{}:{}.{}:{}:{}",
        abs.display(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.ino(),
        m.dev()
    ))
}

fn memo() -> &'static std::sync::Mutex<std::collections::BTreeMap<String, String>> {
    static MEMO: std::sync::OnceLock<std::sync::Mutex<std::collections::BTreeMap<String, String>>> =
        std::sync::OnceLock::new();
    MEMO.get_or_init(Default::default)
}

/// A cache key from the parts that determine a layer's bytes.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// sha256 of a file's content, streamed; computed once per run for an unchanged file (the
/// layer cache key and the SBOM both need it).
pub fn file_sha256(path: &Path) -> Result<String, FsError> {
    let key = stat_key(path);
    if let Some(hit) = key
        .as_ref()
        .and_then(|k| memo().lock().ok()?.get(k).cloned())
    {
        return Ok(hit);
    }
    let hex = hash_file::<Sha256>(path)?;
    if let (Some(k), Ok(mut m)) = (key, memo().lock()) {
        m.insert(k, hex.clone());
    }
    Ok(hex)
}

fn hash_file<D: Digest>(path: &Path) -> Result<String, FsError> {
    let mut f = File::open(path).map_err(|e| FsError::new("read", path, e))?;
    let mut h = D::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| FsError::new("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

impl LayerCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        LayerCache {
            dir: dir.join("layers"),
            hashes: dir.join("hashes"),
        }
    }

    /// [`file_sha256`], remembered across runs by the file's identity, so a no-op re-run
    /// does not read a large binary again.
    pub fn file_sha256(&self, path: &Path) -> Result<String, FsError> {
        self.remembered(path, "sha256", 64, file_sha256)
    }

    /// The sha512 of a file (for the SBOMs), remembered like [`LayerCache::file_sha256`].
    pub fn file_sha512(&self, path: &Path) -> Result<String, FsError> {
        self.remembered(path, "sha512", 128, hash_file::<Sha512>)
    }

    fn remembered(
        &self,
        path: &Path,
        alg: &str,
        len: usize,
        hash: fn(&Path) -> Result<String, FsError>,
    ) -> Result<String, FsError> {
        let Some(id) = stat_key(path) else {
            return hash(path);
        };
        // sha256 entries keep the key they had before sha512 was added.
        let entry = match alg {
            "sha256" => self.hashes.join(key(&[&id])),
            _ => self.hashes.join(key(&[alg, &id])),
        };
        if let Ok(hex) = std::fs::read_to_string(&entry)
            && hex.len() == len
            && hex.chars().all(|c| c.is_ascii_hexdigit())
        {
            if alg == "sha256"
                && let Ok(mut m) = memo().lock()
            {
                m.insert(id, hex.clone());
            }
            return Ok(hex);
        }
        let hex = hash(path)?;
        fsutil::write_atomic(&entry, hex.as_bytes())?;
        Ok(hex)
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached layer for `key`, if its blob is still in `layout` with the right size.
    pub fn get(&self, key: &str, layout: &Layout) -> Option<LayerBlob> {
        let bytes = std::fs::read(self.entry(key)).ok()?;
        let blob: LayerBlob = serde_json::from_slice(&bytes).ok()?;
        layout.has_blob(&blob.digest, blob.size).then_some(blob)
    }

    /// Records the layer for `key`.
    pub fn put(&self, key: &str, blob: &LayerBlob) -> Result<(), FsError> {
        let bytes = serde_json::to_vec(blob)
            .map_err(|e| FsError::new("write", self.entry(key), e.into()))?;
        fsutil::write_atomic(&self.entry(key), &bytes)
    }
}
