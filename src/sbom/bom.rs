//! One binary's linked crates + the base → a CycloneDX 1.5 document (`cyclonedx-bom` types)
//! → canonical JSON bytes.
//!
//! Reproducible by construction: no serial number (CycloneDX makes it optional; a random
//! one would change every run), `timestamp` from the plan's epoch, sorted components and
//! dependencies, keys sorted by [`to_canonical_json`], and bom-refs made of names, versions,
//! sources and paths relative to the workspace root.

use std::collections::BTreeSet;

use cyclonedx_bom::models::bom::{Bom, SpecVersion};
use cyclonedx_bom::models::component::{Classification, Component, Components, Pedigree, Scope};
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::hash::{Hash, HashAlgorithm, HashValue, Hashes};
use cyclonedx_bom::models::license::{LicenseChoice, Licenses};
use cyclonedx_bom::models::metadata::Metadata;
use cyclonedx_bom::models::property::{Properties, Property};
use cyclonedx_bom::models::tool::Tools;
use cyclonedx_bom::prelude::{DateTime, NormalizedString, Purl, SpdxExpression};
use purl::GenericPurlBuilder;
use sha2::{Digest, Sha256};

use crate::canonical::{JsonBlob, to_canonical_json};
use crate::image::base::{CA_BUNDLE_PATH, base_entries};
use crate::image::package::Base;
use crate::image::tar::{EntryKind, FileSource};
use crate::platform::Platform;
use crate::sbom::SbomError;
use crate::sbom::resolve::{Crate, CrateGraph, FeatureFlags, Linked};
use crate::sbom::source::CrateSource;
use crate::{TOOL_NAME, TOOL_VERSION};

/// The `webpki-root-certs` release the built-in CA bundle comes from (kept equal to
/// Cargo.lock by a unit test).
pub const WEBPKI_ROOT_CERTS_VERSION: &str = "1.0.11";
/// Its `.crate` sha256 from Cargo.lock.
pub const WEBPKI_ROOT_CERTS_CHECKSUM: &str =
    "e49d0e65abc00c142e8f9428da991da9f1a250c39be97459901eb12b9b49f62a";

/// Prefix of the properties this tool sets.
const PROP: &str = "cargo-containerize";

/// What the image is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseInfo {
    /// The built-in base: its files are listed one by one.
    Builtin,
    /// A registry image (`--base`).
    Pulled {
        /// `registry/path:tag`.
        name: String,
        /// Its digest.
        digest: String,
    },
}

impl From<&Base> for BaseInfo {
    fn from(base: &Base) -> Self {
        match base {
            Base::Builtin(_) => BaseInfo::Builtin,
            Base::Pulled { name, digest, .. } => BaseInfo::Pulled {
                name: name.clone(),
                digest: digest.clone(),
            },
        }
    }
}

/// Everything one SBOM is made of.
#[derive(Debug, Clone)]
pub struct BomInput<'a> {
    /// The platform's crate graph.
    pub graph: &'a CrateGraph,
    /// What the build links.
    pub linked: &'a Linked,
    /// The binary's package id.
    pub package_id: &'a str,
    /// The `[[bin]]` name.
    pub bin: &'a str,
    /// sha256 (hex) of the executable.
    pub binary_sha256: &'a str,
    /// The platform.
    pub platform: Platform,
    /// Feature flags of the build.
    pub features: &'a FeatureFlags,
    /// `SOURCE_DATE_EPOCH` or the commit time.
    pub epoch: u64,
    /// The base.
    pub base: &'a BaseInfo,
}

fn hashes(hex: &str) -> Option<Hashes> {
    Some(Hashes(vec![Hash {
        alg: HashAlgorithm::SHA_256,
        content: HashValue(hex.to_string()),
    }]))
}

fn licenses(expr: Option<&str>) -> Option<Licenses> {
    let expr = expr?.trim();
    if expr.is_empty() {
        return None;
    }
    // `MIT/Apache-2.0` (old cargo style) becomes `MIT OR Apache-2.0`; anything that is not
    // SPDX at all is kept as a license name.
    let choice = match SpdxExpression::parse_lax(expr.to_string()) {
        Ok(e) => LicenseChoice::Expression(e),
        Err(_) => LicenseChoice::license(expr),
    };
    Some(Licenses(vec![choice]))
}

fn prop(name: &str, value: &str) -> Property {
    Property::new(format!("{PROP}:{name}"), value)
}

/// `pkg:cargo/name@version` with `repository_url` (other registries) or `vcs_url` (git).
pub fn purl(krate: &Crate) -> Result<String, String> {
    let mut b = GenericPurlBuilder::new("cargo".to_string(), krate.name.as_str())
        .with_version(krate.version.as_str());
    let qualifier = match &krate.source {
        CrateSource::CratesIo | CrateSource::Path(_) => None,
        CrateSource::Registry(index) => Some(("repository_url", index.clone())),
        CrateSource::Git { url, commit } => Some(("vcs_url", format!("git+{url}@{commit}"))),
    };
    if let Some((k, v)) = qualifier {
        b = b.with_qualifier(k, v).map_err(|e| e.to_string())?;
    }
    b.build().map(|p| p.to_string()).map_err(|e| e.to_string())
}

/// A stable bom-ref: the purl, or for path packages (whose purl cannot say where they
/// are) `path+<dir relative to the workspace>#name@version`.
pub fn bom_ref(krate: &Crate) -> Result<String, String> {
    match &krate.source {
        CrateSource::Path(dir) => Ok(format!("path+{dir}#{}@{}", krate.name, krate.version)),
        _ => purl(krate),
    }
}

fn crate_component(krate: &Crate, kind: Classification) -> Result<Component, String> {
    let mut c = Component::new(kind, &krate.name, &krate.version, Some(bom_ref(krate)?));
    c.purl = Some(
        purl(krate)?
            .parse::<Purl>()
            .map_err(|()| "invalid purl".to_string())?,
    );
    c.description = krate.description.as_deref().map(NormalizedString::new);
    c.licenses = licenses(krate.license.as_deref());
    c.hashes = krate.checksum.as_deref().and_then(hashes);
    Ok(c)
}

fn file_component(path: &str, version: &str, content: &[u8]) -> Component {
    let mut c = Component::new(
        Classification::File,
        &format!("/{path}"),
        version,
        Some(format!("file:/{path}")),
    );
    c.hashes = hashes(&hex::encode(Sha256::digest(content)));
    c
}

/// The base as components: the built-in base's files (the CA bundle with the
/// `webpki-root-certs` release it comes from), or the pulled image.
fn base_component(base: &BaseInfo) -> Result<Component, String> {
    match base {
        BaseInfo::Builtin => {
            let mut os = Component::new(
                Classification::OperatingSystem,
                crate::plan::BUILTIN_BASE_NAME,
                TOOL_VERSION,
                Some(format!(
                    "base:{}@{TOOL_VERSION}",
                    crate::plan::BUILTIN_BASE_NAME
                )),
            );
            os.description = Some(NormalizedString::new(
                "built-in distroless base of cargo-containerize: users and groups, CA bundle, /tmp",
            ));
            let mut files = Vec::new();
            for e in base_entries() {
                let EntryKind::File(FileSource::Bytes(bytes)) = &e.kind else {
                    continue;
                };
                if e.path == CA_BUNDLE_PATH {
                    let mut ca = file_component(&e.path, WEBPKI_ROOT_CERTS_VERSION, bytes);
                    ca.description = Some(NormalizedString::new(
                        "Mozilla's root certificates (PEM), from the webpki-root-certs crate",
                    ));
                    ca.licenses = licenses(Some("CDLA-Permissive-2.0"));
                    let source = Crate {
                        name: "webpki-root-certs".into(),
                        version: WEBPKI_ROOT_CERTS_VERSION.into(),
                        source: CrateSource::CratesIo,
                        license: Some("CDLA-Permissive-2.0".into()),
                        description: None,
                        repository: None,
                        checksum: Some(WEBPKI_ROOT_CERTS_CHECKSUM.into()),
                        proc_macro: false,
                        features: Default::default(),
                        deps: Vec::new(),
                    };
                    // No bom-ref: the app may link the same crate, and refs are unique.
                    let mut ancestor = crate_component(&source, Classification::Library)?;
                    ancestor.bom_ref = None;
                    ca.pedigree = Some(Pedigree {
                        ancestors: Some(Components(vec![ancestor])),
                        descendants: None,
                        variants: None,
                        commits: None,
                        patches: None,
                        notes: None,
                    });
                    files.push(ca);
                } else {
                    files.push(file_component(&e.path, TOOL_VERSION, bytes));
                }
            }
            files.sort_by(|a, b| a.name.cmp(&b.name));
            os.components = Some(Components(files));
            Ok(os)
        }
        BaseInfo::Pulled { name, digest } => {
            let repo = repository_of(name);
            let short = repo.rsplit('/').next().unwrap_or(repo);
            let mut c = Component::new(
                Classification::Container,
                name,
                digest,
                Some(format!("base:{repo}@{digest}")),
            );
            let p = GenericPurlBuilder::new("oci".to_string(), short)
                .with_version(digest.as_str())
                .with_qualifier("repository_url", repo)
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| e.to_string())?;
            c.purl = Some(
                p.to_string()
                    .parse::<Purl>()
                    .map_err(|()| "invalid purl".to_string())?,
            );
            Ok(c)
        }
    }
}

/// `registry/path` of `registry/path:tag` (or `…@sha256:…`).
fn repository_of(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// Builds the CycloneDX document.
pub fn assemble_bom(input: &BomInput<'_>) -> Result<Bom, String> {
    let graph = input.graph;
    let root = graph
        .crates
        .get(input.package_id)
        .ok_or_else(|| format!("package `{}` is not in the resolve", input.package_id))?;
    let members = input.linked.reachable_from(input.package_id);

    let mut app = crate_component(root, Classification::Application)?;
    // The root is the binary: its hash is the executable's, not a .crate checksum.
    app.hashes = hashes(input.binary_sha256);
    let mut props = vec![
        prop("bin", input.bin),
        prop("path", &format!("{}/{}", crate::config::APP_DIR, input.bin)),
        prop("platform", &input.platform.to_string()),
        prop("target", input.platform.triple()),
    ];
    if !input.features.features.is_empty() {
        props.push(prop("features", &input.features.features.join(",")));
    }
    if input.features.all {
        props.push(prop("all-features", "true"));
    }
    if input.features.no_default {
        props.push(prop("no-default-features", "true"));
    }
    app.properties = Some(Properties(props));

    let mut components = Vec::new();
    let mut deps = Vec::new();
    for id in &members {
        let Some(krate) = graph.crates.get(id) else {
            continue;
        };
        let this_ref = bom_ref(krate)?;
        let mut depends: BTreeSet<String> = BTreeSet::new();
        for d in input.linked.edges.get(id).into_iter().flatten() {
            if let Some(k) = graph.crates.get(d) {
                depends.insert(bom_ref(k)?);
            }
        }
        deps.push(Dependency {
            dependency_ref: this_ref,
            dependencies: depends.into_iter().collect(),
        });
        if id != input.package_id {
            let mut c = crate_component(krate, Classification::Library)?;
            c.scope = Some(Scope::Required);
            components.push(c);
        }
    }
    let base = base_component(input.base)?;
    deps.push(Dependency {
        dependency_ref: base.bom_ref.clone().unwrap_or_default(),
        dependencies: Vec::new(),
    });
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    components.push(base);
    deps.sort_by(|a, b| a.dependency_ref.cmp(&b.dependency_ref));

    let timestamp = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(input.epoch),
    )
    .to_string();
    let mut tool = Component::new(Classification::Application, TOOL_NAME, TOOL_VERSION, None);
    tool.description = Some(NormalizedString::new(
        "builds static musl binaries of a Cargo workspace into OCI images",
    ));
    let metadata = Metadata {
        timestamp: Some(DateTime::try_from(timestamp).map_err(|e| e.to_string())?),
        tools: Some(Tools::Object {
            services: None,
            components: Some(Components(vec![tool])),
        }),
        authors: None,
        component: Some(app),
        manufacture: None,
        supplier: None,
        licenses: None,
        properties: None,
        lifecycles: None,
    };
    Ok(Bom {
        version: 1,
        serial_number: None,
        metadata: Some(metadata),
        components: Some(Components(components)),
        services: None,
        external_references: None,
        dependencies: Some(Dependencies(deps)),
        compositions: None,
        properties: None,
        vulnerabilities: None,
        signature: None,
        annotations: None,
        formulation: None,
        spec_version: SpecVersion::V1_5,
    })
}

/// The document as canonical JSON (sorted keys, no whitespace), like every JSON blob.
pub fn to_json(bom: Bom) -> Result<JsonBlob, SbomError> {
    let mut bytes = Vec::new();
    bom.output_as_json_v1_5(&mut bytes)
        .map_err(|e| SbomError::assemble(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| SbomError::assemble(e.to_string()))?;
    to_canonical_json(&value).map_err(|e| SbomError::assemble(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cyclonedx_bom::validation::Validate;

    fn krate(name: &str, source: CrateSource) -> Crate {
        Crate {
            name: name.into(),
            version: "1.2.3+build.1".into(),
            source,
            license: Some("MIT/Apache-2.0".into()),
            description: Some("a\n  crate".into()),
            repository: None,
            checksum: Some("ab".repeat(32)),
            proc_macro: false,
            features: Default::default(),
            deps: Vec::new(),
        }
    }

    #[test]
    fn purls_carry_the_source() {
        assert_eq!(
            purl(&krate("itoa", CrateSource::CratesIo)).unwrap(),
            "pkg:cargo/itoa@1.2.3+build.1"
        );
        let git = krate(
            "gitdep",
            CrateSource::Git {
                url: "https://example.com/g.git".into(),
                commit: "abc".into(),
            },
        );
        assert_eq!(
            purl(&git).unwrap(),
            "pkg:cargo/gitdep@1.2.3+build.1?vcs_url=git%2Bhttps://example.com/g.git%40abc"
        );
        let path = krate("app", CrateSource::Path("crates/app".into()));
        assert_eq!(bom_ref(&path).unwrap(), "path+crates/app#app@1.2.3+build.1");
    }

    #[test]
    fn pulled_base_repository_drops_the_tag() {
        assert_eq!(
            repository_of("127.0.0.1:5000/base:1"),
            "127.0.0.1:5000/base"
        );
        assert_eq!(repository_of("127.0.0.1:5000/base"), "127.0.0.1:5000/base");
        assert_eq!(
            repository_of("gcr.io/d/static@sha256:ab"),
            "gcr.io/d/static"
        );
    }

    #[test]
    fn licenses_are_spdx_expressions() {
        let l = licenses(Some("MIT/Apache-2.0")).unwrap();
        assert_eq!(l.0, vec![LicenseChoice::expression("MIT OR Apache-2.0")]);
        assert!(licenses(Some("  ")).is_none());
    }

    #[test]
    fn ca_bundle_version_matches_cargo_lock() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
        let sums = crate::sbom::source::lock_checksums(&lock).unwrap();
        let (key, sum) = sums
            .iter()
            .find(|((n, _, _), _)| n == "webpki-root-certs")
            .unwrap();
        assert_eq!(key.1, WEBPKI_ROOT_CERTS_VERSION);
        assert_eq!(sum, WEBPKI_ROOT_CERTS_CHECKSUM);
    }

    #[test]
    fn document_is_valid_and_has_no_serial_number() {
        let mut graph = CrateGraph {
            platform: Platform::LinuxAmd64,
            crates: Default::default(),
        };
        let mut app = krate("app", CrateSource::Path(".".into()));
        app.checksum = None;
        graph.crates.insert("app-id".into(), app);
        graph
            .crates
            .insert("itoa-id".into(), krate("itoa", CrateSource::CratesIo));
        let mut linked = Linked::default();
        linked
            .edges
            .insert("app-id".into(), ["itoa-id".to_string()].into());
        let input = BomInput {
            graph: &graph,
            linked: &linked,
            package_id: "app-id",
            bin: "app",
            binary_sha256: &"cd".repeat(32),
            platform: Platform::LinuxAmd64,
            features: &FeatureFlags::default(),
            epoch: 1_700_000_000,
            base: &BaseInfo::Builtin,
        };
        let bom = assemble_bom(&input).unwrap();
        assert!(bom.validate_version(SpecVersion::V1_5).passed());
        let json = to_json(bom).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json.bytes).unwrap();
        assert!(v.get("serialNumber").is_none());
        assert_eq!(v["specVersion"], "1.5");
        assert_eq!(v["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["components"][0]["scope"], "required");
        assert_eq!(
            v["components"][0]["licenses"][0]["expression"],
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            v["metadata"]["component"]["hashes"][0]["content"],
            "cd".repeat(32)
        );
        let base = &v["components"][1];
        assert_eq!(base["type"], "operating-system");
        let ca = base["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "/etc/ssl/certs/ca-certificates.crt")
            .unwrap();
        assert_eq!(ca["version"], WEBPKI_ROOT_CERTS_VERSION);
        // Byte-identical when made again.
        assert_eq!(to_json(assemble_bom(&input).unwrap()).unwrap(), json);
    }
}
