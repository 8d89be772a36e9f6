//! Entries → [`LayerBlob`] in one streaming pass: tar → sha256 (diff_id) → gzip or zstd
//! → sha256 (digest) → a temp file in the blob directory, renamed to its digest at the
//! end. No layer is ever held in memory.

use std::io::{self, BufWriter, Write};

use sha2::{Digest, Sha256};

use crate::config::Compression;
use crate::fsutil::FsError;
use crate::image::LayerBlob;
use crate::image::cache::{self, LayerCache};
use crate::image::gzip::{self, ParGzWriter};
use crate::image::layout::Layout;
use crate::image::tar::{Entry, EntryKind, FileSource, normalize, write_tar};
use crate::output::Progress;

/// Most threads one layer's compression uses.
const MAX_GZIP_THREADS: usize = 16;
/// zstd's level for every zstd layer (zstd's own default): changing it changes digests.
pub const ZSTD_LEVEL: i32 = 3;

/// How a layer is compressed: the algorithm and, for gzip, the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// gzip or zstd.
    pub compression: Compression,
    /// gzip level 0-9 (zstd layers use [`ZSTD_LEVEL`]).
    pub level: u32,
}

impl Codec {
    /// What goes into a layer's cache key: everything that shapes the compressed bytes.
    fn key(&self) -> String {
        match self.compression {
            Compression::Gzip => format!("gzip:{}:{}", self.level, gzip::BLOCK_SIZE),
            Compression::Zstd => {
                format!("zstd:{ZSTD_LEVEL}:mt:{}", zstd::zstd_safe::version_string())
            }
        }
    }
}

/// The compressing stage of the pipe.
enum Compressor<W: Write> {
    Gzip(ParGzWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// zstd in multi-threaded mode makes the same bytes for any number of workers ≥ 1
    /// (and other bytes than single-threaded mode), so it always runs with workers.
    fn new(codec: Codec, inner: W, threads: usize) -> io::Result<Self> {
        Ok(match codec.compression {
            Compression::Gzip => Compressor::Gzip(ParGzWriter::new(inner, codec.level, threads)?),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
                enc.multithread(u32::try_from(threads.max(1)).unwrap_or(1))?;
                enc.include_checksum(true)?;
                Compressor::Zstd(enc)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(gz) => gz.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(gz) => gz.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(gz) => gz.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// A writer that hashes and counts what passes through.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }
    /// Returns the inner writer, `sha256:<hex>` and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            crate::canonical::sha256_digest(self.hasher.finalize()),
            self.len,
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `entries` as a compressed tar layer into `blobs_dir` (the `blobs/sha256`
/// directory of an OCI layout) and returns its descriptor data. `progress` counts the
/// uncompressed tar bytes (compression is the slow part, and it consumes exactly those).
pub fn write_layer(
    entries: Vec<Entry>,
    mtime: u64,
    codec: Codec,
    layout: &Layout,
    progress: &Progress,
) -> Result<LayerBlob, FsError> {
    let tmp = layout.new_blob()?;
    let tmp_path = tmp.path().to_path_buf();
    let io_err = |e: io::Error| FsError::new("write layer", &tmp_path, e);
    let file = tmp.reopen().map_err(io_err)?;
    let compressed = HashWriter::new(BufWriter::with_capacity(256 * 1024, file));
    // Blocks compressed in parallel; the bytes do not depend on the thread count. Capped so
    // the blocks in flight stay small on many-core runners (16 cores: ~17 MiB of input).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_GZIP_THREADS));
    let gz = Compressor::new(codec, compressed, threads).map_err(io_err)?;
    let uncompressed = progress.writer(HashWriter::new(gz));
    let uncompressed = write_tar(entries, mtime, uncompressed).map_err(io_err)?;
    let (gz, diff_id, _) = uncompressed.into_inner().finish();
    let compressed = gz.finish().map_err(io_err)?;
    let (buf, digest, size) = compressed.finish();
    buf.into_inner().map_err(|e| io_err(e.into_error()))?;
    layout.commit_blob(tmp, &digest)?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        compression: codec.compression,
    })
}

/// The cache key of a layer: the tool version, the codec, mtime and every entry's path,
/// mode, owner and content hash: everything that shapes the layer's bytes.
pub fn layer_key(
    entries: &[Entry],
    mtime: u64,
    codec: Codec,
    cache: &LayerCache,
) -> Result<String, FsError> {
    let mut parts = vec![
        crate::TOOL_VERSION.to_string(),
        codec.key(),
        mtime.to_string(),
    ];
    for e in normalize(entries.to_vec()) {
        let content = match &e.kind {
            EntryKind::Dir => "dir".to_string(),
            EntryKind::Symlink(t) => format!("symlink:{t}"),
            EntryKind::File(FileSource::Bytes(b)) => {
                format!("file:{}", hex::encode(Sha256::digest(b)))
            }
            EntryKind::File(FileSource::Path(p)) => format!("file:{}", cache.file_sha256(p)?),
        };
        parts.push(format!(
            "{}:{:o}:{}:{}:{content}",
            e.path, e.mode, e.uid, e.gid
        ));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(cache::key(&refs))
}

/// Returns the layer for `entries` from the cache when its blob is still in the layout,
/// else writes it, showing the bar `progress` makes (called only then). The flag says
/// whether it was reused.
pub fn cached_layer(
    entries: Vec<Entry>,
    mtime: u64,
    codec: Codec,
    cache: &LayerCache,
    layout: &Layout,
    progress: impl FnOnce() -> Progress,
) -> Result<(LayerBlob, bool), FsError> {
    let key = layer_key(&entries, mtime, codec, cache)?;
    if let Some(blob) = cache.get(&key, layout) {
        return Ok((blob, true));
    }
    let progress = progress();
    let blob = write_layer(entries, mtime, codec, layout, &progress);
    progress.finish();
    let blob = blob?;
    cache.put(&key, &blob)?;
    Ok((blob, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::blob_path;
    use std::io::Read;

    const GZIP6: Codec = Codec {
        compression: Compression::Gzip,
        level: 6,
    };

    #[test]
    fn zstd_layers_are_the_same_bytes_for_any_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path()).unwrap();
        // Several MiB of not-too-compressible data, so zstd's workers each get jobs.
        let data: Vec<u8> = (0..12_000_000u64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let entries = vec![Entry::bytes("app/big", 0o755, data)];
        let zstd = Codec {
            compression: Compression::Zstd,
            level: 6,
        };
        let blobs: Vec<LayerBlob> = [1, 2, 4]
            .iter()
            .map(|&threads| {
                let tmp = layout.new_blob().unwrap();
                let file = tmp.reopen().unwrap();
                let mut c = Compressor::new(zstd, HashWriter::new(file), threads).unwrap();
                let tar = write_tar(entries.clone(), 0, HashWriter::new(Vec::new())).unwrap();
                let (tar, diff_id, _) = tar.finish();
                c.write_all(&tar).unwrap();
                let (_, digest, size) = c.finish().unwrap().finish();
                LayerBlob {
                    digest,
                    diff_id,
                    size,
                    compression: Compression::Zstd,
                }
            })
            .collect();
        assert!(blobs.windows(2).all(|w| w[0] == w[1]), "{blobs:?}");
        // And write_layer gives those bytes, which decode to the tar.
        let blob = write_layer(entries, 0, zstd, &layout, &Progress::hidden()).unwrap();
        assert_eq!(blob, blobs[0]);
        let bytes = std::fs::read(blob_path(&layout.blobs_dir(), &blob.digest)).unwrap();
        let raw = zstd::stream::decode_all(bytes.as_slice()).unwrap();
        assert_eq!(
            crate::canonical::sha256_digest(Sha256::digest(&raw)),
            blob.diff_id
        );
    }

    #[test]
    fn digest_and_diff_id_match_the_written_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path()).unwrap();
        let entries = vec![Entry::bytes("app/hello", 0o755, vec![7u8; 100_000])];
        let blob = write_layer(entries.clone(), 0, GZIP6, &layout, &Progress::hidden()).unwrap();
        let path = blob_path(&layout.blobs_dir(), &blob.digest);
        let gz = std::fs::read(&path).unwrap();
        assert_eq!(gz.len() as u64, blob.size);
        assert_eq!(
            crate::canonical::sha256_digest(Sha256::digest(&gz)),
            blob.digest
        );
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(
            crate::canonical::sha256_digest(Sha256::digest(&raw)),
            blob.diff_id
        );
        // Deterministic: the same input gives the same blob, and no temp files remain.
        assert_eq!(
            write_layer(entries, 0, GZIP6, &layout, &Progress::hidden()).unwrap(),
            blob
        );
        assert_eq!(std::fs::read_dir(layout.blobs_dir()).unwrap().count(), 1);
        let stray = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp")
            })
            .count();
        assert_eq!(stray, 0, "no temp file is left behind");
    }
}
