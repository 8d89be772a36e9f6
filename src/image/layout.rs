//! Images → an OCI image layout: blobs by digest (temp file + rename), then `index.json`
//! written last and atomically, so a crash leaves either the previous layout or the new
//! one. Also writes OCI archives (a tar of a layout) for `podman load`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use serde_json::Value;

use crate::canonical::{JsonBlob, to_canonical_json};
use crate::fsutil::{self, FsError};
use crate::image::artifact::Artifact;
use crate::image::config::AssembleError;
use crate::image::manifest::descriptor;
use crate::image::tar::{Entry, write_tar};
use crate::image::{ImageSet, blob_path};
use oci_spec::image::ANNOTATION_REF_NAME;

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Errors writing a layout.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayoutError {
    /// File system error.
    #[error(transparent)]
    #[diagnostic(
        code(containerize::layout),
        help("check that the directory is writable and the disk is not full")
    )]
    Fs(#[from] FsError),
    /// A document could not be built.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Assemble(#[from] AssembleError),
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens (creating if needed) the layout at `dir`.
    pub fn open(dir: &Path) -> Result<Self, LayoutError> {
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        fsutil::create_dir_all(&layout.blobs_dir())?;
        let marker = dir.join("oci-layout");
        if std::fs::read(&marker).ok().as_deref() != Some(OCI_LAYOUT) {
            fsutil::write_atomic(&marker, OCI_LAYOUT)?;
        }
        Ok(layout)
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `blobs/sha256`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// A temp file for a new blob. It lives in the layout's root, not in `blobs/sha256`,
    /// so a crash never leaves a file there that does not hash to its name.
    pub fn new_blob(&self) -> Result<tempfile::NamedTempFile, FsError> {
        fsutil::temp_in(&self.dir)
    }

    /// Moves a finished temp file to `blobs/sha256/<hex>` (dropping it when that blob is
    /// already there: content-addressed blobs never change).
    pub fn commit_blob(&self, tmp: tempfile::NamedTempFile, digest: &str) -> Result<(), FsError> {
        let dest = blob_path(&self.blobs_dir(), digest);
        if dest.exists() {
            return Ok(());
        }
        fsutil::persist(tmp, &dest)
    }

    /// Whether a blob with this digest and size is present.
    pub fn has_blob(&self, digest: &str, size: u64) -> bool {
        std::fs::metadata(blob_path(&self.blobs_dir(), digest)).is_ok_and(|m| m.len() == size)
    }

    /// Writes a JSON blob unless it is already there.
    pub fn put_json(&self, blob: &JsonBlob) -> Result<(), LayoutError> {
        if !self.has_blob(&blob.digest, blob.size()) {
            let mut tmp = self.new_blob()?;
            let dest = blob_path(&self.blobs_dir(), &blob.digest);
            std::io::Write::write_all(&mut tmp, &blob.bytes)
                .map_err(|e| FsError::new("write", &dest, e))?;
            self.commit_blob(tmp, &blob.digest)?;
        }
        Ok(())
    }

    /// Writes every config, manifest and index of `sets` (layers are written by the
    /// layer stage, or copied with [`Layout::copy_blobs_from`]).
    pub fn put_documents(&self, sets: &[ImageSet]) -> Result<(), LayoutError> {
        for set in sets {
            for img in &set.images {
                self.put_json(&img.config)?;
                self.put_json(&img.manifest)?;
            }
            if let Some(index) = &set.index {
                self.put_json(index)?;
            }
        }
        Ok(())
    }

    /// Writes the blobs and manifests of `artifacts` (SBOMs).
    pub fn put_artifacts(&self, artifacts: &[Artifact]) -> Result<(), LayoutError> {
        for a in artifacts {
            for blob in a.blobs() {
                self.put_json(&blob)?;
            }
            self.put_json(&a.manifest)?;
        }
        Ok(())
    }

    /// Copies (hard-links where possible) every blob of `sets` from `src`.
    pub fn copy_blobs_from(&self, src: &Layout, sets: &[ImageSet]) -> Result<(), LayoutError> {
        for digest in set_digests(sets) {
            let from = blob_path(&src.blobs_dir(), &digest);
            let dest = blob_path(&self.blobs_dir(), &digest);
            if dest.exists() || std::fs::hard_link(&from, &dest).is_ok() {
                continue;
            }
            let mut tmp = self.new_blob()?;
            let mut src_file =
                std::fs::File::open(&from).map_err(|e| FsError::new("read", &from, e))?;
            std::io::copy(&mut src_file, &mut tmp).map_err(|e| FsError::new("write", &dest, e))?;
            self.commit_blob(tmp, &digest)?;
        }
        Ok(())
    }

    /// Writes `index.json` last and atomically: one entry per image and tag, annotated
    /// `org.opencontainers.image.ref.name = <image>:<tag>`. Entries of other images
    /// already in the layout are kept, so runs for different packages accumulate.
    pub fn write_index(&self, sets: &[ImageSet]) -> Result<(), LayoutError> {
        self.write_index_with(sets, &[])
    }

    /// [`Layout::write_index`], plus one entry per artifact (SBOM) of `sets`, named
    /// `<image>:sha256-<subject hex>.sbom` and carrying its `artifactType`: entries in
    /// `index.json` keep the artifacts (and so their subjects) safe from [`Layout::gc`].
    pub fn write_index_with(
        &self,
        sets: &[ImageSet],
        artifacts: &[Artifact],
    ) -> Result<(), LayoutError> {
        let names: BTreeSet<&str> = sets.iter().map(|s| s.name.as_str()).collect();
        let mut entries: Vec<Descriptor> = self
            .read_index()
            .map(|i| i.manifests().clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                let image = ref_name(d)
                    .and_then(|r| r.rsplit_once(':'))
                    .map(|(n, _)| n.to_string());
                image.is_some_and(|n| !names.contains(n.as_str()))
            })
            .collect();
        entries.extend(index_entries(sets)?);
        for a in artifacts {
            let mut d = descriptor(
                MediaType::ImageManifest,
                &a.manifest.digest,
                a.manifest.size(),
            )?;
            d.set_artifact_type(Some(MediaType::Other(a.artifact_type.clone())));
            d.set_annotations(Some(
                [(ANNOTATION_REF_NAME.to_string(), a.ref_name())].into(),
            ));
            entries.push(d);
        }
        entries.sort_by(|a, b| ref_name(a).cmp(&ref_name(b)));
        let doc = index_json(entries)?;
        fsutil::write_atomic(&self.dir.join("index.json"), &doc.bytes)?;
        Ok(())
    }

    fn read_index(&self) -> Option<ImageIndex> {
        let bytes = std::fs::read(self.dir.join("index.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Deletes blobs (and stale temp files) not reachable from `index.json`. Returns how
    /// many files were removed.
    pub fn gc(&self) -> Result<usize, LayoutError> {
        let Some(index) = self.read_index() else {
            return Ok(0);
        };
        // Walk manifests and indexes only: layers and configs are leaves, and reading a
        // layer here would pull a whole (possibly huge) blob into memory.
        let is_document = |media_type: &str| {
            media_type.ends_with("manifest.v1+json")
                || media_type.ends_with("index.v1+json")
                || media_type.ends_with("manifest.v2+json")
                || media_type.ends_with("manifest.list.v2+json")
        };
        let mut reachable = BTreeSet::new();
        let mut stack: Vec<(String, bool)> = index
            .manifests()
            .iter()
            .map(|d| (d.digest().to_string(), is_document(d.media_type().as_ref())))
            .collect();
        while let Some((digest, document)) = stack.pop() {
            if !reachable.insert(digest.clone()) || !document {
                continue;
            }
            let Ok(bytes) = std::fs::read(blob_path(&self.blobs_dir(), &digest)) else {
                continue;
            };
            let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            let entry = |d: &Value| -> Option<(String, bool)> {
                let digest = d.get("digest")?.as_str()?.to_string();
                let media_type = d
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Some((digest, is_document(media_type)))
            };
            for key in ["manifests", "layers"] {
                if let Some(list) = doc.get(key).and_then(Value::as_array) {
                    stack.extend(list.iter().filter_map(entry));
                }
            }
            for key in ["config", "subject"] {
                if let Some(e) = doc.get(key).and_then(entry) {
                    stack.push(e);
                }
            }
        }
        let mut removed = 0;
        // Temp files of runs that were killed (a lock keeps live runs out of here).
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_file(e.path());
                    removed += 1;
                }
            }
        }
        let dir = self.blobs_dir();
        let read = std::fs::read_dir(&dir).map_err(|e| FsError::new("read directory", &dir, e))?;
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !reachable.contains(&format!("sha256:{name}")) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|e| FsError::new("remove", &path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()?
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// The `index.json` entries for `sets`: one per image and tag.
fn index_entries(sets: &[ImageSet]) -> Result<Vec<Descriptor>, AssembleError> {
    let mut out = Vec::new();
    for set in sets {
        let (top, media_type) = set.top();
        for tag in &set.tags {
            let mut d = descriptor(media_type.clone(), &top.digest, top.size())?;
            d.set_annotations(Some(
                [(
                    ANNOTATION_REF_NAME.to_string(),
                    format!("{}:{tag}", set.name),
                )]
                .into(),
            ));
            out.push(d);
        }
    }
    Ok(out)
}

fn index_json(entries: Vec<Descriptor>) -> Result<JsonBlob, AssembleError> {
    let err = |e: &dyn std::fmt::Display| AssembleError::new("index.json", "layout", e);
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .map_err(|e| err(&e))?;
    to_canonical_json(&index).map_err(|e| err(&e))
}

/// Every blob digest of `sets`, sorted and de-duplicated.
pub fn set_digests(sets: &[ImageSet]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for set in sets {
        if let Some(i) = &set.index {
            out.insert(i.digest.clone());
        }
        for img in &set.images {
            out.insert(img.manifest.digest.clone());
            out.insert(img.config.digest.clone());
            out.extend(img.layers.iter().map(|l| l.digest.clone()));
        }
    }
    out
}

/// Writes an OCI archive (a tar of a layout holding exactly `sets`, plus docker's
/// `manifest.json` with `docker`'s entries) to `dest`, atomically, reading blobs from `src`.
pub fn write_archive(
    src: &Layout,
    sets: &[ImageSet],
    docker: &[crate::image::archive::DockerEntry],
    dest: &Path,
) -> Result<(), LayoutError> {
    let index = index_json(index_entries(sets)?)?;
    let manifest = crate::image::archive::manifest_json(docker)
        .map_err(|e| AssembleError::new("manifest.json", "the archive", e))?;
    let mut entries = vec![
        Entry::bytes("oci-layout", 0o644, OCI_LAYOUT),
        Entry::bytes("index.json", 0o644, index.bytes),
        manifest,
    ];
    for digest in set_digests(sets) {
        let hex = digest.trim_start_matches("sha256:");
        entries.push(Entry::file(
            &format!("blobs/sha256/{hex}"),
            0o644,
            blob_path(&src.blobs_dir(), &digest),
        ));
    }
    // `--tarball -`-like targets (a FIFO, /dev/stdout) are streamed into; a regular file
    // is replaced atomically.
    let out = fsutil::OutputFile::create(dest)?;
    let w = write_tar(entries, 0, std::io::BufWriter::new(out.file()))
        .map_err(|e| FsError::new("write", dest, e))?;
    w.into_inner()
        .map_err(|e| FsError::new("write", dest, e.into_error()))?;
    out.finish()?;
    Ok(())
}
