//! [`Inventory`] → an SPDX 2.3 JSON document → canonical JSON bytes: the same content as
//! the CycloneDX document, in SPDX's words. See <https://spdx.github.io/spdx-spec/v2.3/>.
//!
//! A typed model of our own, like [`super::cyclonedx`], for the fields this tool writes.
//! Every item is a package (SPDX 2.3 files must carry a SHA-1, which nothing else here
//! needs): the binary (`primaryPackagePurpose: APPLICATION`, with `packageFileName`
//! `/app/<bin>` and the executable's SHA-256 and SHA-512), each linked crate (`LIBRARY`,
//! its purl as an external reference, the `.crate` SHA-256 from Cargo.lock, its declared
//! license), the base (`OPERATING-SYSTEM` with a `FILE` package per file, or the pulled
//! `CONTAINER`). Relationships: the document `DESCRIBES` the binary and the base; a crate
//! `DEPENDS_ON` what it links; the base `CONTAINS` its files; the CA bundle's crate is
//! `ANCESTOR_OF` the CA bundle.
//!
//! Reproducible: `created` is the plan's epoch, SPDX ids are derived from the bom-refs,
//! and `documentNamespace` (which must be unique per document) is derived from the
//! executable's SHA-256 and the platform, so the same build gives the same namespace.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::canonical::{JsonBlob, to_canonical_json};
use crate::plan::platform_slug;
use crate::sbom::SbomError;
use crate::sbom::bom::{HashAlg, Inventory, Item, Kind, License};
use crate::{TOOL_NAME, TOOL_VERSION};

/// The spec version written.
pub const SPEC_VERSION: &str = "SPDX-2.3";

/// `NOASSERTION`: SPDX's "not known" for license, copyright and download fields.
const NOASSERTION: &str = "NOASSERTION";

/// An SPDX document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// [`SPEC_VERSION`].
    pub spdx_version: &'static str,
    /// Always `CC0-1.0`, as the spec requires.
    pub data_license: &'static str,
    /// `SPDXRef-DOCUMENT`.
    #[serde(rename = "SPDXID")]
    pub spdx_id: &'static str,
    /// `<image>-<platform>`.
    pub name: String,
    /// Unique URI of this document.
    pub document_namespace: String,
    /// Time and tool.
    pub creation_info: CreationInfo,
    /// Every item.
    pub packages: Vec<Package>,
    /// How they relate.
    pub relationships: Vec<Relationship>,
}

/// `creationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreationInfo {
    /// RFC 3339.
    pub created: String,
    /// `Tool: cargo-containerize-<version>`.
    pub creators: Vec<String>,
}

/// A package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// `SPDXRef-…`.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version_info: String,
    /// The file it is (the binary's path in the image, a base file's path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_file_name: Option<String>,
    /// Where its source is published, or `NOASSERTION`.
    pub download_location: String,
    /// Always false: the files of a crate are not listed.
    pub files_analyzed: bool,
    /// Hashes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    /// Not concluded by this tool: `NOASSERTION`.
    pub license_concluded: &'static str,
    /// The package's SPDX expression, or `NOASSERTION`.
    pub license_declared: String,
    /// A declared license that is not an SPDX expression, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_comments: Option<String>,
    /// `NOASSERTION`.
    pub copyright_text: &'static str,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `cargo-containerize:*` properties, one `name=value` per line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The purl.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
    /// `APPLICATION`, `LIBRARY`, `OPERATING-SYSTEM`, `FILE`, `CONTAINER`.
    pub primary_package_purpose: &'static str,
}

/// `checksums[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checksum {
    /// `SHA256` / `SHA512`.
    pub algorithm: &'static str,
    /// Hex.
    pub checksum_value: String,
}

/// `externalRefs[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRef {
    /// `PACKAGE-MANAGER`.
    pub reference_category: &'static str,
    /// `purl`.
    pub reference_type: &'static str,
    /// The purl.
    pub reference_locator: String,
}

/// `relationships[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationship {
    /// From.
    pub spdx_element_id: String,
    /// `DESCRIBES`, `DEPENDS_ON`, `CONTAINS`, `ANCESTOR_OF`.
    pub relationship_type: &'static str,
    /// To.
    pub related_spdx_element: String,
}

/// `SPDXRef-<kind>-<name>-<version>-<8 hex of the key>`: readable, unique (the key is the
/// bom-ref, which is unique), and only of the characters SPDX ids allow.
fn spdx_id(kind: &str, item: &Item, key: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    format!(
        "SPDXRef-{kind}-{}-{}-{}",
        clean(item.name.trim_start_matches('/')),
        clean(&item.version),
        &hash[..8]
    )
}

/// SPDX download locations are URLs of a few schemes; anything else (a `file://` git
/// remote, another registry) is `NOASSERTION`.
fn download_location(item: &Item) -> String {
    let public = |u: &str| {
        let u = u.strip_prefix("git+").unwrap_or(u);
        ["https://", "http://", "ssh://", "git://"]
            .iter()
            .any(|s| u.starts_with(s))
    };
    match &item.download {
        Some(u) if public(u) => u.clone(),
        _ => NOASSERTION.into(),
    }
}

fn package(item: &Item, id: String) -> Package {
    let (declared, comments) = match &item.license {
        Some(License::Expression(e)) => (e.clone(), None),
        Some(License::Name(n)) => (NOASSERTION.into(), Some(format!("declared as: {n}"))),
        None => (NOASSERTION.into(), None),
    };
    let file_name = match item.kind {
        Kind::File => Some(item.name.clone()),
        Kind::Application => item
            .properties
            .iter()
            .find(|(k, _)| k.ends_with(":path"))
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    let comment = (!item.properties.is_empty()).then(|| {
        let lines: Vec<String> = item
            .properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        lines.join("\n")
    });
    Package {
        spdx_id: id,
        name: item.name.clone(),
        version_info: item.version.clone(),
        package_file_name: file_name,
        download_location: download_location(item),
        files_analyzed: false,
        checksums: item
            .hashes
            .iter()
            .map(|h| Checksum {
                algorithm: match h.alg {
                    HashAlg::Sha256 => "SHA256",
                    HashAlg::Sha512 => "SHA512",
                },
                checksum_value: h.hex.clone(),
            })
            .collect(),
        license_concluded: NOASSERTION,
        license_declared: declared,
        license_comments: comments,
        copyright_text: NOASSERTION,
        description: item.description.clone(),
        comment,
        external_refs: item
            .purl
            .iter()
            .map(|p| ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: p.clone(),
            })
            .collect(),
        primary_package_purpose: match item.kind {
            Kind::Application => "APPLICATION",
            Kind::Library => "LIBRARY",
            Kind::OperatingSystem => "OPERATING-SYSTEM",
            Kind::File => "FILE",
            Kind::Container => "CONTAINER",
        },
    }
}

fn relationship(from: &str, kind: &'static str, to: &str) -> Relationship {
    Relationship {
        spdx_element_id: from.to_string(),
        relationship_type: kind,
        related_spdx_element: to.to_string(),
    }
}

/// Packages for `item`, its files and its ancestors, with the relationships among them.
fn add_item(
    item: &Item,
    kind: &str,
    packages: &mut Vec<Package>,
    relationships: &mut Vec<Relationship>,
) -> String {
    let key = item.bom_ref.clone().unwrap_or_else(|| item.name.clone());
    let id = spdx_id(kind, item, &key);
    packages.push(package(item, id.clone()));
    for child in &item.children {
        let child_id = add_item(child, "File", packages, relationships);
        relationships.push(relationship(&id, "CONTAINS", &child_id));
    }
    for ancestor in &item.ancestors {
        let ancestor_key = format!("{key} ancestor {}", ancestor.purl.as_deref().unwrap_or(""));
        let ancestor_id = spdx_id("Package", ancestor, &ancestor_key);
        packages.push(package(ancestor, ancestor_id.clone()));
        relationships.push(relationship(&ancestor_id, "ANCESTOR_OF", &id));
    }
    id
}

/// The SPDX document of an inventory; `image` names it.
pub fn render(inventory: &Inventory, image: &str) -> Document {
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    let mut ids = std::collections::BTreeMap::new();
    let doc = "SPDXRef-DOCUMENT";
    let root_id = add_item(
        &inventory.root,
        "Application",
        &mut packages,
        &mut relationships,
    );
    relationships.push(relationship(doc, "DESCRIBES", &root_id));
    if let Some(r) = &inventory.root.bom_ref {
        ids.insert(r.clone(), root_id);
    }
    for item in &inventory.components {
        let kind = match item.kind {
            Kind::OperatingSystem | Kind::Container => "Base",
            _ => "Package",
        };
        let id = add_item(item, kind, &mut packages, &mut relationships);
        if matches!(item.kind, Kind::OperatingSystem | Kind::Container) {
            relationships.push(relationship(doc, "DESCRIBES", &id));
        }
        if let Some(r) = &item.bom_ref {
            ids.insert(r.clone(), id);
        }
    }
    for (from, to) in &inventory.dependencies {
        let Some(from) = ids.get(from) else { continue };
        for t in to {
            if let Some(t) = ids.get(t) {
                relationships.push(relationship(from, "DEPENDS_ON", t));
            }
        }
    }
    relationships.sort();
    packages.sort_by(|a, b| a.spdx_id.cmp(&b.spdx_id));
    let platform = platform_slug(inventory.platform);
    let binary = inventory.root.hashes.first().map_or("", |h| h.hex.as_str());
    Document {
        spdx_version: SPEC_VERSION,
        data_license: "CC0-1.0",
        spdx_id: doc,
        name: format!("{image}-{platform}"),
        document_namespace: format!(
            "https://spdx.org/spdxdocs/{TOOL_NAME}/{image}-{}-{platform}-{binary}",
            inventory.root.version
        ),
        creation_info: CreationInfo {
            created: inventory.timestamp(),
            creators: vec![format!("Tool: {TOOL_NAME}-{TOOL_VERSION}")],
        },
        packages,
        relationships,
    }
}

/// The document as canonical JSON.
pub fn to_json(doc: &Document) -> Result<JsonBlob, SbomError> {
    to_canonical_json(doc).map_err(|e| SbomError::assemble(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no package {name}"))
    }

    #[test]
    fn document_has_packages_checksums_purls_and_relationships() {
        let inventory = crate::sbom::bom::tests::sample();
        let json = to_json(&render(&inventory, "app")).unwrap();
        assert_eq!(to_json(&render(&inventory, "app")).unwrap(), json);
        let v: serde_json::Value = serde_json::from_slice(&json.bytes).unwrap();
        assert_eq!(v["spdxVersion"], "SPDX-2.3");
        assert_eq!(v["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        let app = find(&v, "app");
        assert_eq!(app["primaryPackagePurpose"], "APPLICATION");
        assert_eq!(app["packageFileName"], "/app/app");
        assert_eq!(app["checksums"][1]["algorithm"], "SHA512");
        assert_eq!(app["licenseDeclared"], "MIT OR Apache-2.0");
        let itoa = find(&v, "itoa");
        assert_eq!(
            itoa["externalRefs"][0]["referenceLocator"],
            "pkg:cargo/itoa@1.2.3+build.1"
        );
        assert_eq!(
            itoa["downloadLocation"],
            "https://crates.io/api/v1/crates/itoa/1.2.3+build.1/download"
        );
        let rels = v["relationships"].as_array().unwrap();
        let has = |from: &serde_json::Value, kind: &str, to: &serde_json::Value| {
            rels.iter().any(|r| {
                r["spdxElementId"] == *from
                    && r["relationshipType"] == kind
                    && r["relatedSpdxElement"] == *to
            })
        };
        assert!(has(&app["SPDXID"], "DEPENDS_ON", &itoa["SPDXID"]));
        assert!(has(&"SPDXRef-DOCUMENT".into(), "DESCRIBES", &app["SPDXID"]));
        let ca = find(&v, "/etc/ssl/certs/ca-certificates.crt");
        let webpki = find(&v, "webpki-root-certs");
        assert!(has(&webpki["SPDXID"], "ANCESTOR_OF", &ca["SPDXID"]));
        let base = find(&v, crate::plan::BUILTIN_BASE_NAME);
        assert!(has(&base["SPDXID"], "CONTAINS", &ca["SPDXID"]));
        // SPDX ids are unique.
        let ids: std::collections::BTreeSet<&str> = v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), v["packages"].as_array().unwrap().len());
    }
}
