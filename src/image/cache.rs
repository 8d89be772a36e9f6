//! Input hash → cached [`LayerBlob`]: a re-run with an unchanged binary reuses its
//! compressed layer instead of gzipping it again. Entries are small JSON files under
//! `target/containerize/cache/layers/`, keyed by the sha256 of everything that shapes the
//! layer bytes; the blobs themselves live in the layout. Safe to delete at any time.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fsutil::{self, FsError};
use crate::image::LayerBlob;
use crate::image::layout::Layout;

/// The layer cache directory.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
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

/// sha256 of a file's content, streamed.
pub fn file_sha256(path: &Path) -> Result<String, FsError> {
    let mut f = File::open(path).map_err(|e| FsError::new("read", path, e))?;
    let mut h = Sha256::new();
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
        }
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
