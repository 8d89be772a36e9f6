//! The audit of one image platform → a CycloneDX 1.6 document with a `vulnerabilities`
//! section (VEX), written next to the SBOM (`vulnerabilities.<os>-<arch>.cdx.json`) and
//! attached to the platform manifest like the SBOM, so registries and Dependency-Track
//! show it.
//!
//! Each vulnerability's `affects` names the crate by the bom-ref the SBOM gives it (the
//! purl for crates.io packages), and the crate is listed in `components` too, so the
//! document stands alone. The analysis says what the audit knows:
//! - linked into the binary: `in_triage` (affected; nobody has judged exploitability);
//! - ignored with a reason: `not_affected`, the reason as `detail`;
//! - in the workspace's resolve but not linked (proc-macro, build- or dev-dependency):
//!   `not_affected` with justification `code_not_present`.
//!
//! Informational advisories and yanked versions are not vulnerabilities and stay out.
//! Reproducible: the timestamp is the plan's epoch, the database commit is a property,
//! and keys are sorted.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Finding, NotLinked, Status, Subject};
use crate::canonical::{JsonBlob, to_canonical_json};
use crate::sbom::bom;
use crate::sbom::cyclonedx::{self, Component, ComponentType, Property, SPEC_VERSION, Tools};

/// A CycloneDX document holding vulnerabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VexBom {
    /// `CycloneDX`.
    pub bom_format: &'static str,
    /// `1.6`.
    pub spec_version: &'static str,
    /// 1.
    pub version: u32,
    /// Time, tool, the binary and the database.
    pub metadata: VexMetadata,
    /// The crates the vulnerabilities affect.
    pub components: Vec<Component>,
    /// The findings.
    pub vulnerabilities: Vec<Vulnerability>,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VexMetadata {
    /// RFC 3339.
    pub timestamp: String,
    /// This tool.
    pub tools: Tools,
    /// The binary (same bom-ref as in the SBOM).
    pub component: Component,
    /// The advisory database's commit and date.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// `vulnerabilities[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vulnerability {
    /// Unique in the document: `<id>:<crate bom-ref>`.
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    /// `RUSTSEC-YYYY-NNNN`.
    pub id: String,
    /// RustSec.
    pub source: VulnSource,
    /// The CVE and GHSA aliases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<VulnReference>,
    /// The CVSS rating, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratings: Vec<Rating>,
    /// The advisory's title.
    pub description: String,
    /// The advisory's text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What to upgrade to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// The advisory's page.
    pub advisories: Vec<AdvisoryRef>,
    /// The advisory's date.
    pub published: String,
    /// The crate and version.
    pub affects: Vec<Affects>,
    /// What the audit knows.
    pub analysis: Analysis,
}

/// `source` / `references[].source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VulnSource {
    /// `RustSec`, `NVD`, `GitHub`.
    pub name: String,
    /// The page of this id.
    pub url: String,
}

/// `references[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VulnReference {
    /// The alias.
    pub id: String,
    /// Where it is published.
    pub source: VulnSource,
}

/// `ratings[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    /// The database that scored it.
    pub source: VulnSource,
    /// 0.0–10.0.
    pub score: f64,
    /// `low` … `critical` (`none` for 0).
    pub severity: String,
    /// `CVSSv31`, `CVSSv4`….
    pub method: &'static str,
    /// The vector.
    pub vector: String,
}

/// `advisories[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdvisoryRef {
    /// Its URL.
    pub url: String,
}

/// `affects[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affects {
    /// The component's bom-ref.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The version, affected.
    pub versions: Vec<AffectedVersion>,
}

/// `affects[].versions[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffectedVersion {
    /// The version.
    pub version: String,
    /// `affected` (or `unaffected` for what is not in the image).
    pub status: &'static str,
}

/// `analysis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// `in_triage` or `not_affected`.
    pub state: &'static str,
    /// `code_not_present` for what the binary does not link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<&'static str>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn rustsec_source(url: &str) -> VulnSource {
    VulnSource {
        name: "RustSec".into(),
        url: url.into(),
    }
}

fn alias(id: &str) -> Option<VulnReference> {
    let (name, url) = if id.starts_with("CVE-") {
        ("NVD", format!("https://nvd.nist.gov/vuln/detail/{id}"))
    } else if id.starts_with("GHSA-") {
        ("GitHub", format!("https://github.com/advisories/{id}"))
    } else {
        return None;
    };
    Some(VulnReference {
        id: id.into(),
        source: VulnSource {
            name: name.into(),
            url,
        },
    })
}

fn library(krate: &crate::sbom::resolve::Crate) -> Result<Component, String> {
    Ok(Component {
        kind: ComponentType::Library,
        bom_ref: Some(bom::bom_ref(krate)?),
        name: krate.name.clone(),
        version: Some(krate.version.clone()),
        description: None,
        scope: None,
        hashes: Vec::new(),
        licenses: Vec::new(),
        purl: Some(bom::purl(krate)?),
        properties: Vec::new(),
        components: Vec::new(),
        pedigree: None,
    })
}

fn analysis(status: &Status) -> Analysis {
    match status {
        Status::Ignored(i) => Analysis {
            state: "not_affected",
            justification: None,
            detail: Some(match &i.reason {
                Some(r) => format!("ignored by {}: {r}", i.source),
                None => format!("ignored by {}", i.source),
            }),
        },
        Status::NotInImage(why) => Analysis {
            state: "not_affected",
            justification: Some("code_not_present"),
            detail: Some(match why {
                NotLinked::ProcMacro => "a proc-macro: compiled for the build host, not linked into the binary".into(),
                NotLinked::OtherImages(i) => format!("linked only into {}", i.join(", ")),
                NotLinked::Unused => "in the workspace's resolve, not linked into the binary (a build- or dev-dependency, or behind a feature or target this build leaves out)".into(),
            }),
        },
        Status::BelowThreshold(min) => Analysis {
            state: "in_triage",
            justification: None,
            detail: Some(format!("linked into the binary; below the gate's severity ({})", min.as_str())),
        },
        _ => Analysis {
            state: "in_triage",
            justification: None,
            detail: Some("linked into the binary".into()),
        },
    }
}

/// The document of one image platform: `root` is the binary's package (its SBOM
/// component), `findings` that platform's findings; `epoch` the plan's.
pub fn render(
    root: &crate::sbom::resolve::Crate,
    bin: &str,
    findings: &[&Finding],
    db: &super::db::DbInfo,
    epoch: u64,
) -> Result<VexBom, String> {
    let mut components: BTreeMap<String, Component> = BTreeMap::new();
    let mut vulnerabilities = Vec::new();
    for f in findings {
        let Subject::Advisory(a) = &f.subject else {
            continue;
        };
        if a.informational.is_some() {
            continue;
        }
        let component = library(&f.krate)?;
        let reference = component.bom_ref.clone().unwrap_or_default();
        components.insert(reference.clone(), component);
        let affected = !matches!(f.status, Status::NotInImage(_));
        vulnerabilities.push(Vulnerability {
            bom_ref: format!("{}:{reference}", a.id),
            id: a.id.clone(),
            source: rustsec_source(&a.url),
            references: a.aliases.iter().filter_map(|i| alias(i)).collect(),
            ratings: a
                .cvss
                .iter()
                .map(|c| Rating {
                    source: rustsec_source(&a.url),
                    score: c.score,
                    severity: c.severity.map_or("none", |s| s.as_str()).into(),
                    method: c.method,
                    vector: c.vector.clone(),
                })
                .collect(),
            description: a.title.clone(),
            detail: a.description.trim().to_string(),
            recommendation: (!a.patched.is_empty())
                .then(|| format!("Upgrade {} to {}", f.krate.name, a.patched.join(" or "))),
            advisories: vec![AdvisoryRef { url: a.url.clone() }],
            published: format!("{}T00:00:00Z", a.date),
            affects: vec![Affects {
                reference,
                versions: vec![AffectedVersion {
                    version: f.krate.version.clone(),
                    status: if affected { "affected" } else { "unaffected" },
                }],
            }],
            analysis: analysis(&f.status),
        });
    }
    vulnerabilities.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    let mut binary = library(root)?;
    binary.kind = ComponentType::Application;
    binary.name = bin.to_string();
    binary.purl = None;
    let mut properties = Vec::new();
    for (name, value) in [("commit", &db.commit), ("date", &db.date)] {
        if let Some(v) = value {
            properties.push(Property {
                name: format!("cargo-containerize:advisory-db:{name}"),
                value: v.clone(),
            });
        }
    }
    Ok(VexBom {
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        version: 1,
        metadata: VexMetadata {
            timestamp: crate::plan::rfc3339(epoch),
            tools: cyclonedx::tools(),
            component: binary,
            properties,
        },
        components: components.into_values().collect(),
        vulnerabilities,
    })
}

/// The document as canonical JSON.
pub fn to_json(doc: &VexBom) -> Result<JsonBlob, super::AuditError> {
    to_canonical_json(doc).map_err(|e| super::AuditError::Assemble(e.to_string()))
}
