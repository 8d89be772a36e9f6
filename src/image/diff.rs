//! Two builds of one image → where they differ, as `verify` reports it: the first layer
//! whose digest differs, the first file in it that differs (path, size, sha256, mode,
//! or present on one side only), and the config fields that differ (JSON paths such as
//! `config.Labels.org.opencontainers.image.revision` or `rootfs.diff_ids[1]`). Reads
//! layer blobs from OCI layouts; no network.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::canonical::sha256_digest;
use crate::config::Compression;
use crate::image::layer::HashWriter;

/// One entry of a layer's tar, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Bytes (0 for directories and links).
    pub size: u64,
    /// `sha256:<hex>` of the content (of the link target for links).
    pub sha256: String,
    /// Mode bits and entry type, as `0755 file`.
    pub kind: String,
}

/// The first file that differs between two layers (sorted by path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDifference {
    /// `/usr/local/bin/app`.
    pub path: String,
    /// In the first layer (`None`: only in the second).
    pub ours: Option<FileFacts>,
    /// In the second layer.
    pub theirs: Option<FileFacts>,
}

/// Reads the entries of a compressed layer blob: path (absolute, `/…`) → facts.
pub fn layer_files(
    blob: &Path,
    compression: Compression,
) -> std::io::Result<BTreeMap<String, FileFacts>> {
    let file = std::fs::File::open(blob)?;
    let reader: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(file)?),
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = format!("/{}", path.trim_start_matches("./").trim_start_matches('/'));
        let path = path.trim_end_matches('/').to_string();
        let header = entry.header();
        let mode = header.mode().unwrap_or(0) & 0o7777;
        let (kind, link) = match header.entry_type() {
            tar::EntryType::Directory => ("dir", None),
            tar::EntryType::Symlink | tar::EntryType::Link => (
                "link",
                entry.link_name()?.map(|l| l.to_string_lossy().into_owned()),
            ),
            _ => ("file", None),
        };
        let (size, sha256) = match &link {
            Some(target) => (0, sha256_digest(Sha256::digest(target.as_bytes()))),
            None => {
                let mut w = HashWriter::new(std::io::sink());
                std::io::copy(&mut entry, &mut w)?;
                let (_, digest, len) = w.finish();
                (len, digest)
            }
        };
        out.insert(
            path,
            FileFacts {
                size,
                sha256,
                kind: format!("{mode:04o} {kind}"),
            },
        );
    }
    Ok(out)
}

/// The first path (in sorted order) whose entry differs or is on one side only.
pub fn first_file_difference(
    ours: &BTreeMap<String, FileFacts>,
    theirs: &BTreeMap<String, FileFacts>,
) -> Option<FileDifference> {
    let paths: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    paths
        .into_iter()
        .find(|p| ours.get(*p) != theirs.get(*p))
        .map(|p| FileDifference {
            path: p.clone(),
            ours: ours.get(p).cloned(),
            theirs: theirs.get(p).cloned(),
        })
}

/// The JSON paths (leaves) at which two documents (configs, SBOMs) differ, sorted.
pub fn json_differences(ours: &[u8], theirs: &[u8]) -> Vec<String> {
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk("", &parse(ours), &parse(theirs), &mut out);
    out
}

fn walk(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                walk(
                    &join(k),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                walk(&format!("{at}[{i}]"), p, q, out);
            }
        }
        _ if a != b => out.push(at.to_string()),
        _ => {}
    }
}

/// One layer as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Its position (0 = the base).
    pub index: usize,
    /// Digest.
    pub digest: String,
    /// Compressed size.
    pub size: u64,
    /// gzip or zstd.
    pub compression: Compression,
}

/// How two image manifests differ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestDifference {
    /// Annotation keys whose values differ.
    pub annotations: Vec<String>,
    /// The first layer that differs: (ours, theirs); `None` on one side when the layer
    /// counts differ.
    pub first_layer: Option<(Option<LayerRef>, Option<LayerRef>)>,
    /// The configs' digests differ.
    pub config: bool,
}

#[derive(serde::Deserialize)]
struct ManifestDoc {
    config: DescriptorDoc,
    #[serde(default)]
    layers: Vec<DescriptorDoc>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct DescriptorDoc {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
}

/// Compares two image manifests (JSON). An unreadable one differs everywhere.
pub fn compare_manifests(ours: &[u8], theirs: &[u8]) -> ManifestDifference {
    let (Ok(a), Ok(b)) = (
        serde_json::from_slice::<ManifestDoc>(ours),
        serde_json::from_slice::<ManifestDoc>(theirs),
    ) else {
        return ManifestDifference {
            config: true,
            ..Default::default()
        };
    };
    let keys: std::collections::BTreeSet<&String> =
        a.annotations.keys().chain(b.annotations.keys()).collect();
    let layer = |l: Option<&DescriptorDoc>, index: usize| {
        l.map(|d| LayerRef {
            index,
            digest: d.digest.clone(),
            size: d.size,
            compression: if d.media_type.contains("zstd") {
                Compression::Zstd
            } else {
                Compression::Gzip
            },
        })
    };
    let n = a.layers.len().max(b.layers.len());
    ManifestDifference {
        annotations: keys
            .into_iter()
            .filter(|k| a.annotations.get(*k) != b.annotations.get(*k))
            .cloned()
            .collect(),
        first_layer: (0..n)
            .find(|&i| a.layers.get(i).map(|d| &d.digest) != b.layers.get(i).map(|d| &d.digest))
            .map(|i| (layer(a.layers.get(i), i), layer(b.layers.get(i), i))),
        config: a.config.digest != b.config.digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(size: u64, c: char) -> FileFacts {
        FileFacts {
            size,
            sha256: format!("sha256:{}", c.to_string().repeat(64)),
            kind: "0755 file".into(),
        }
    }

    #[test]
    fn the_first_differing_path_is_named_with_both_sides() {
        let a = BTreeMap::from([
            ("/app".to_string(), facts(1, 'a')),
            ("/usr/local/bin/x".to_string(), facts(10, 'b')),
        ]);
        let mut b = a.clone();
        assert_eq!(first_file_difference(&a, &b), None);
        b.insert("/usr/local/bin/x".into(), facts(11, 'c'));
        b.insert("/zz".into(), facts(1, 'd'));
        let d = first_file_difference(&a, &b).unwrap();
        assert_eq!(d.path, "/usr/local/bin/x");
        assert_eq!(d.ours.unwrap().size, 10);
        assert_eq!(d.theirs.unwrap().size, 11);
        b.insert("/usr/local/bin/x".into(), facts(10, 'b'));
        let d = first_file_difference(&a, &b).unwrap();
        assert_eq!((d.path.as_str(), d.ours), ("/zz", None));
    }

    #[test]
    fn json_differences_are_leaf_paths() {
        let a = br#"{"config":{"Env":["A=1"],"Labels":{"x":"1"}},"rootfs":{"diff_ids":["a","b"]}}"#;
        let b = br#"{"config":{"Env":["A=2"],"Labels":{"x":"1","y":"2"}},"rootfs":{"diff_ids":["a","c"]}}"#;
        assert_eq!(
            json_differences(a, b),
            ["config.Env[0]", "config.Labels.y", "rootfs.diff_ids[1]"]
        );
        assert!(json_differences(a, a).is_empty());
    }
}
