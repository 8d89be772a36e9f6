//! [`Inventory`] → a CycloneDX 1.6 JSON document → canonical JSON bytes.
//!
//! A small typed model of our own, holding only the fields this tool writes. Why not a
//! crate:
//! - `cyclonedx-bom` (0.8, used until 1.5) stops at spec 1.5: its `SpecVersion` has no 1.6
//!   and it can only serialize 1.3–1.5 documents;
//! - `serde-cyclonedx` (0.10) has 1.6 types, but they are generated from the JSON schema
//!   at build time (schemafy, syn and prettyplease as build dependencies, about 30 s of
//!   build), it does not compile on its own (it relies on another crate enabling serde's
//!   `derive`), and the generated types are weak where it matters: component `type` and
//!   `scope` are strings, and the `oneOf`s (licenses, tools) are `serde_json::Value` or
//!   `LicenseChoiceUrlVariant1ItemLicense`-style names.
//!
//! The model below is checked against the official 1.6 JSON schema in strict mode
//! (cyclonedx-python-lib) by the integration tests, so it cannot drift from the spec
//! silently. Reproducible: no serial number (CycloneDX makes it optional; a random one
//! would change every run), `timestamp` from the plan's epoch, keys sorted by
//! [`to_canonical_json`].

use serde::Serialize;

use crate::canonical::{JsonBlob, to_canonical_json};
use crate::sbom::SbomError;
use crate::sbom::bom::{self, Checksum, HashAlg, Inventory, Item, Kind, License};
use crate::{TOOL_NAME, TOOL_VERSION};

/// The spec version written.
pub const SPEC_VERSION: &str = "1.6";

/// A CycloneDX BOM (the subset this tool writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    /// Always `CycloneDX`.
    pub bom_format: &'static str,
    /// [`SPEC_VERSION`].
    pub spec_version: &'static str,
    /// The BOM's version: 1 (one document per build, never revised).
    pub version: u32,
    /// Time, tools and the binary.
    pub metadata: Metadata,
    /// Linked crates and the base.
    pub components: Vec<Component>,
    /// The dependency graph.
    pub dependencies: Vec<Dependency>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// RFC 3339.
    pub timestamp: String,
    /// This tool.
    pub tools: Tools,
    /// The binary.
    pub component: Component,
}

/// `metadata.tools` in the 1.5+ object form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tools {
    /// The tools as components.
    pub components: Vec<Component>,
}

/// A component's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentType {
    /// `application`.
    Application,
    /// `library`.
    Library,
    /// `operating-system`.
    OperatingSystem,
    /// `file`.
    File,
    /// `container`.
    Container,
}

/// A component's `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Linked into the binary.
    Required,
}

/// A component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: ComponentType,
    /// `bom-ref`.
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Name.
    pub name: String,
    /// Version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Hashes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// Licenses (one entry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    /// Package URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// Properties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    /// Sub-components.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// Where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pedigree: Option<Pedigree>,
}

/// `hashes[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hash {
    /// `SHA-256` / `SHA-512`.
    pub alg: &'static str,
    /// Hex.
    pub content: String,
}

/// `licenses[]`: an expression, or a named license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LicenseChoice {
    /// `{"expression": "MIT OR Apache-2.0"}`.
    Expression {
        /// The SPDX expression.
        expression: String,
    },
    /// `{"license": {"name": "…"}}`.
    License {
        /// The license.
        license: NamedLicense,
    },
}

/// A license that is not an SPDX expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedLicense {
    /// As the package gave it.
    pub name: String,
}

/// `properties[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Property {
    /// `cargo-containerize:…`.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `pedigree`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pedigree {
    /// What the component was made from.
    pub ancestors: Vec<Component>,
}

/// `dependencies[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The component's bom-ref.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The bom-refs it links.
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

fn hash(c: &Checksum) -> Hash {
    Hash {
        alg: match c.alg {
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha512 => "SHA-512",
        },
        content: c.hex.clone(),
    }
}

fn component(item: &Item) -> Component {
    let kind = match item.kind {
        Kind::Application => ComponentType::Application,
        Kind::Library => ComponentType::Library,
        Kind::OperatingSystem => ComponentType::OperatingSystem,
        Kind::File => ComponentType::File,
        Kind::Container => ComponentType::Container,
    };
    let licenses = match &item.license {
        None => Vec::new(),
        Some(License::Expression(e)) => vec![LicenseChoice::Expression {
            expression: e.clone(),
        }],
        Some(License::Name(n)) => vec![LicenseChoice::License {
            license: NamedLicense { name: n.clone() },
        }],
    };
    Component {
        kind,
        bom_ref: item.bom_ref.clone(),
        name: item.name.clone(),
        version: Some(item.version.clone()),
        description: item.description.clone(),
        // Every crate listed is linked into the binary; the rest has no scope.
        scope: (item.kind == Kind::Library && item.bom_ref.is_some()).then_some(Scope::Required),
        hashes: item.hashes.iter().map(hash).collect(),
        licenses,
        purl: item.purl.clone(),
        properties: item
            .properties
            .iter()
            .map(|(name, value)| Property {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        components: item.children.iter().map(component).collect(),
        pedigree: (!item.ancestors.is_empty()).then(|| Pedigree {
            ancestors: item.ancestors.iter().map(component).collect(),
        }),
    }
}

/// `metadata.tools`: this tool, as every document it writes names it.
pub fn tools() -> Tools {
    let mut tool = Item::new(Kind::Application, TOOL_NAME, TOOL_VERSION, None);
    tool.description = Some(bom::TOOL_DESCRIPTION.into());
    Tools {
        components: vec![component(&tool)],
    }
}

/// The CycloneDX document of an inventory.
pub fn render(inventory: &Inventory) -> Bom {
    Bom {
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        version: 1,
        metadata: Metadata {
            timestamp: inventory.timestamp(),
            tools: tools(),
            component: component(&inventory.root),
        },
        components: inventory.components.iter().map(component).collect(),
        dependencies: inventory
            .dependencies
            .iter()
            .map(|(r, on)| Dependency {
                reference: r.clone(),
                depends_on: on.clone(),
            })
            .collect(),
    }
}

/// The document as canonical JSON (sorted keys, no whitespace), like every JSON blob.
pub fn to_json(bom: &Bom) -> Result<JsonBlob, SbomError> {
    to_canonical_json(bom).map_err(|e| SbomError::assemble(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::bom::WEBPKI_ROOT_CERTS_VERSION;

    #[test]
    fn document_is_1_6_with_both_hashes_and_no_serial_number() {
        let inventory = crate::sbom::bom::tests::sample();
        let json = to_json(&render(&inventory)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json.bytes).unwrap();
        assert!(v.get("serialNumber").is_none());
        assert_eq!(v["specVersion"], "1.6");
        assert_eq!(v["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["components"][0]["scope"], "required");
        assert_eq!(
            v["components"][0]["licenses"][0]["expression"],
            "MIT OR Apache-2.0"
        );
        let hashes = &v["metadata"]["component"]["hashes"];
        assert_eq!(hashes[0]["alg"], "SHA-256");
        assert_eq!(hashes[0]["content"], "cd".repeat(32));
        assert_eq!(hashes[1]["alg"], "SHA-512");
        assert_eq!(hashes[1]["content"], "ef".repeat(64));
        let base = &v["components"][1];
        assert_eq!(base["type"], "operating-system");
        assert!(base.get("scope").is_none());
        let ca = base["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "/etc/ssl/certs/ca-certificates.crt")
            .unwrap();
        assert_eq!(ca["version"], WEBPKI_ROOT_CERTS_VERSION);
        assert_eq!(ca["hashes"][1]["alg"], "SHA-512");
        let ancestor = &ca["pedigree"]["ancestors"][0];
        assert!(ancestor.get("bom-ref").is_none() && ancestor.get("scope").is_none());
        // base:…, then path+.#app@… → itoa, then itoa itself.
        assert_eq!(v["dependencies"][1]["ref"], "path+.#app@1.2.3+build.1");
        assert_eq!(
            v["dependencies"][1]["dependsOn"][0],
            "pkg:cargo/itoa@1.2.3+build.1"
        );
    }

    #[test]
    fn a_license_that_is_not_spdx_is_a_named_license() {
        let mut item = crate::sbom::bom::tests::sample().root;
        item.license = Some(License::Name("Proprietary".into()));
        let v = serde_json::to_value(component(&item)).unwrap();
        assert_eq!(v["licenses"][0]["license"]["name"], "Proprietary");
    }
}
