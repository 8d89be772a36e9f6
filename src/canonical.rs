//! Serialize → canonical JSON bytes + digest: the only way JSON blobs are made.
//!
//! oci-spec keeps labels and annotations in `HashMap`s, whose order changes between runs;
//! digests must not. So every object is written with its keys sorted here, explicitly,
//! whatever `serde_json::Map` does under the dependency graph's features.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A JSON document with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBlob {
    /// Canonical bytes.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl JsonBlob {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Serializes `value` with sorted keys and no insignificant whitespace.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Result<JsonBlob, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    let mut bytes = Vec::with_capacity(1024);
    write_value(&v, &mut bytes)?;
    let digest = sha256_digest(Sha256::digest(&bytes));
    Ok(JsonBlob { bytes, digest })
}

/// The OCI digest (`sha256:<hex>`) of a SHA-256 hash, through oci-spec's [`Digest`] so
/// every digest of the tool is spelled one way.
///
/// [`Digest`]: oci_spec::image::Digest
pub fn sha256_digest(hash: impl AsRef<[u8]>) -> String {
    let hex = hex::encode(hash.as_ref());
    match <oci_spec::image::Sha256Digest as std::str::FromStr>::from_str(&hex) {
        Ok(d) => oci_spec::image::Digest::from(d).to_string(),
        // 32 bytes always hex-encode to a valid SHA-256 digest.
        Err(_) => unreachable!("a SHA-256 hash is 64 hex digits"),
    }
}

fn write_value(v: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k)?;
                out.push(b':');
                write_value(val, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_are_sorted_at_every_level() {
        let mut m = HashMap::new();
        for k in ["z", "a", "m", "b"] {
            m.insert(k.to_string(), HashMap::from([("y", 1), ("x", 2)]));
        }
        let blob = to_canonical_json(&m).unwrap();
        assert_eq!(
            String::from_utf8(blob.bytes).unwrap(),
            r#"{"a":{"x":2,"y":1},"b":{"x":2,"y":1},"m":{"x":2,"y":1},"z":{"x":2,"y":1}}"#
        );
        assert!(blob.digest.starts_with("sha256:"));
    }
}
