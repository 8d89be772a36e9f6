//! One binary's linked crates + the base → an [`Inventory`]: what the image holds, with
//! identities (purls, bom-refs), hashes and licenses, in no particular SBOM format. The
//! CycloneDX ([`super::cyclonedx`]) and SPDX ([`super::spdx`]) documents are two renderings
//! of the same inventory, so they can never disagree about the content.
//!
//! Reproducible by construction: items are sorted, bom-refs are made of names, versions,
//! sources and paths relative to the workspace root, and nothing reads the clock (the
//! documents' time is the plan's epoch).

use std::collections::BTreeSet;

use purl::GenericPurlBuilder;
use sha2::{Digest, Sha256, Sha512};

use crate::TOOL_VERSION;
use crate::image::base::{CA_BUNDLE_PATH, base_entries};
use crate::image::package::Base;
use crate::image::tar::{EntryKind, FileSource};
use crate::platform::Platform;
use crate::sbom::resolve::{Crate, CrateGraph, FeatureFlags, Linked};
use crate::sbom::source::CrateSource;

/// The `webpki-root-certs` release the built-in CA bundle comes from (kept equal to
/// Cargo.lock by a unit test).
pub const WEBPKI_ROOT_CERTS_VERSION: &str = "1.0.11";
/// Its `.crate` sha256 from Cargo.lock.
pub const WEBPKI_ROOT_CERTS_CHECKSUM: &str =
    "e49d0e65abc00c142e8f9428da991da9f1a250c39be97459901eb12b9b49f62a";

/// Prefix of the properties this tool sets.
pub const PROP: &str = "cargo-containerize";

/// What the tool says it is, in both formats.
pub const TOOL_DESCRIPTION: &str =
    "builds static musl binaries of a Cargo workspace into OCI images";

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
    /// sha512 (hex) of the executable.
    pub binary_sha512: &'a str,
    /// The platform.
    pub platform: Platform,
    /// Feature flags of the build.
    pub features: &'a FeatureFlags,
    /// `SOURCE_DATE_EPOCH` or the commit time.
    pub epoch: u64,
    /// The base.
    pub base: &'a BaseInfo,
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The binary.
    Application,
    /// A linked crate.
    Library,
    /// The built-in base.
    OperatingSystem,
    /// A file of the built-in base.
    File,
    /// A pulled base image.
    Container,
}

/// A hash algorithm the documents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// One hash of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The algorithm.
    pub alg: HashAlg,
    /// Lowercase hex.
    pub hex: String,
}

/// A declared license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum License {
    /// A valid SPDX expression (`MIT/Apache-2.0` already turned into `MIT OR Apache-2.0`).
    Expression(String),
    /// Anything else, kept as the name the package gave.
    Name(String),
}

/// One thing in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What it is.
    pub kind: Kind,
    /// Unique within the document (`None` for a pedigree ancestor, which may be linked
    /// too).
    pub bom_ref: Option<String>,
    /// Name (a crate name, or an absolute path for a file).
    pub name: String,
    /// Version.
    pub version: String,
    /// One-line description.
    pub description: Option<String>,
    /// Declared license.
    pub license: Option<License>,
    /// Package URL.
    pub purl: Option<String>,
    /// Where the source can be downloaded, when that is a public location.
    pub download: Option<String>,
    /// Hashes, SHA-256 first.
    pub hashes: Vec<Checksum>,
    /// `cargo-containerize:*` properties.
    pub properties: Vec<(String, String)>,
    /// Contained items (the base's files).
    pub children: Vec<Item>,
    /// What it was made from (the CA bundle's crate).
    pub ancestors: Vec<Item>,
}

impl Item {
    /// An item with only its identity set.
    pub fn new(kind: Kind, name: &str, version: &str, bom_ref: Option<String>) -> Self {
        Item {
            kind,
            bom_ref,
            name: name.to_string(),
            version: version.to_string(),
            description: None,
            license: None,
            purl: None,
            download: None,
            hashes: Vec::new(),
            properties: Vec::new(),
            children: Vec::new(),
            ancestors: Vec::new(),
        }
    }
}

/// One image platform's content: the binary, what it links, the base and the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The binary (its package, with the executable's hashes).
    pub root: Item,
    /// Linked crates sorted by bom-ref, then the base.
    pub components: Vec<Item>,
    /// bom-ref → the bom-refs it links, sorted; one entry per crate and the base.
    pub dependencies: Vec<(String, Vec<String>)>,
    /// The documents' time, seconds since 1970.
    pub epoch: u64,
    /// The platform.
    pub platform: Platform,
}

impl Inventory {
    /// The documents' time as RFC 3339.
    pub fn timestamp(&self) -> String {
        crate::plan::rfc3339(self.epoch)
    }
}

/// sha256 and sha512 of `content`.
pub fn both_hashes(content: &[u8]) -> Vec<Checksum> {
    vec![
        Checksum {
            alg: HashAlg::Sha256,
            hex: hex::encode(Sha256::digest(content)),
        },
        Checksum {
            alg: HashAlg::Sha512,
            hex: hex::encode(Sha512::digest(content)),
        },
    ]
}

fn sha256_only(hex: &str) -> Vec<Checksum> {
    vec![Checksum {
        alg: HashAlg::Sha256,
        hex: hex.to_string(),
    }]
}

/// A package's `license` as an SPDX expression where it is one: `MIT/Apache-2.0` (old
/// cargo style) becomes `MIT OR Apache-2.0`; anything that is not SPDX at all is kept as a
/// license name.
pub fn license(expr: Option<&str>) -> Option<License> {
    use spdx::{Expression, ParseMode};
    let expr = expr?.trim();
    if expr.is_empty() {
        return None;
    }
    let converted = expr.replace('/', " OR ");
    let strict = ParseMode {
        allow_deprecated: true,
        ..ParseMode::STRICT
    };
    let valid = Expression::parse_mode(expr, ParseMode::LAX).is_ok()
        && Expression::parse_mode(&converted, strict).is_ok();
    Some(if valid {
        License::Expression(converted)
    } else {
        License::Name(expr.to_string())
    })
}

/// Line breaks and tabs become spaces, as CycloneDX's normalizedString asks.
fn one_line(s: &str) -> String {
    s.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ")
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

/// Where the crate's source is published: the crates.io download, or the git commit.
fn download(krate: &Crate) -> Option<String> {
    match &krate.source {
        CrateSource::CratesIo => Some(format!(
            "https://crates.io/api/v1/crates/{}/{}/download",
            krate.name, krate.version
        )),
        CrateSource::Git { url, commit } => Some(format!("git+{url}@{commit}")),
        CrateSource::Registry(_) | CrateSource::Path(_) => None,
    }
}

fn crate_item(krate: &Crate, kind: Kind) -> Result<Item, String> {
    let mut c = Item::new(kind, &krate.name, &krate.version, Some(bom_ref(krate)?));
    c.purl = Some(purl(krate)?);
    c.description = krate.description.as_deref().map(one_line);
    c.license = license(krate.license.as_deref());
    c.download = download(krate);
    c.hashes = krate
        .checksum
        .as_deref()
        .map(sha256_only)
        .unwrap_or_default();
    Ok(c)
}

fn file_item(path: &str, version: &str, content: &[u8]) -> Item {
    let mut c = Item::new(
        Kind::File,
        &format!("/{path}"),
        version,
        Some(format!("file:/{path}")),
    );
    c.hashes = both_hashes(content);
    c
}

/// The built-in base's CA bundle, with the `webpki-root-certs` release it comes from.
fn ca_bundle_item(path: &str, content: &[u8]) -> Result<Item, String> {
    let mut ca = file_item(path, WEBPKI_ROOT_CERTS_VERSION, content);
    ca.description =
        Some("Mozilla's root certificates (PEM), from the webpki-root-certs crate".into());
    ca.license = license(Some("CDLA-Permissive-2.0"));
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
    let mut ancestor = crate_item(&source, Kind::Library)?;
    ancestor.bom_ref = None;
    ancestor.download = None;
    ca.ancestors = vec![ancestor];
    Ok(ca)
}

/// The base as an item: the built-in base with its files, or the pulled image.
fn base_item(base: &BaseInfo) -> Result<Item, String> {
    match base {
        BaseInfo::Builtin => {
            let name = crate::plan::BUILTIN_BASE_NAME;
            let mut os = Item::new(
                Kind::OperatingSystem,
                name,
                TOOL_VERSION,
                Some(format!("base:{name}@{TOOL_VERSION}")),
            );
            os.description = Some(
                "built-in distroless base of cargo-containerize: users and groups, CA bundle, /tmp"
                    .into(),
            );
            for e in base_entries() {
                let EntryKind::File(FileSource::Bytes(bytes)) = &e.kind else {
                    continue;
                };
                os.children.push(if e.path == CA_BUNDLE_PATH {
                    ca_bundle_item(&e.path, bytes)?
                } else {
                    file_item(&e.path, TOOL_VERSION, bytes)
                });
            }
            os.children.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(os)
        }
        BaseInfo::Pulled { name, digest } => {
            let repo = repository_of(name);
            let short = repo.rsplit('/').next().unwrap_or(repo);
            let mut c = Item::new(
                Kind::Container,
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
            c.purl = Some(p.to_string());
            if let Some(hex) = digest.strip_prefix("sha256:") {
                c.hashes = sha256_only(hex);
            }
            Ok(c)
        }
    }
}

/// `registry/path` of `registry/path:tag` (or `…@sha256:…`).
pub fn repository_of(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

fn prop(name: &str, value: &str) -> (String, String) {
    (format!("{PROP}:{name}"), value.to_string())
}

/// What one image platform holds.
pub fn assemble_inventory(input: &BomInput<'_>) -> Result<Inventory, String> {
    let graph = input.graph;
    let root = graph
        .crates
        .get(input.package_id)
        .ok_or_else(|| format!("package `{}` is not in the resolve", input.package_id))?;
    let members = input.linked.reachable_from(input.package_id);

    let mut app = crate_item(root, Kind::Application)?;
    // The root is the binary: its hashes are the executable's, not a .crate checksum.
    app.hashes = vec![
        Checksum {
            alg: HashAlg::Sha256,
            hex: input.binary_sha256.to_string(),
        },
        Checksum {
            alg: HashAlg::Sha512,
            hex: input.binary_sha512.to_string(),
        },
    ];
    app.download = None;
    app.properties = vec![
        prop("bin", input.bin),
        prop("path", &format!("{}/{}", crate::config::APP_DIR, input.bin)),
        prop("platform", &input.platform.to_string()),
        prop("target", input.platform.triple()),
    ];
    if !input.features.features.is_empty() {
        app.properties
            .push(prop("features", &input.features.features.join(",")));
    }
    if input.features.all {
        app.properties.push(prop("all-features", "true"));
    }
    if input.features.no_default {
        app.properties.push(prop("no-default-features", "true"));
    }

    let mut components = Vec::new();
    let mut deps = Vec::new();
    for id in &members {
        let Some(krate) = graph.crates.get(id) else {
            continue;
        };
        let mut depends: BTreeSet<String> = BTreeSet::new();
        for d in input.linked.edges.get(id).into_iter().flatten() {
            if let Some(k) = graph.crates.get(d) {
                depends.insert(bom_ref(k)?);
            }
        }
        deps.push((bom_ref(krate)?, depends.into_iter().collect()));
        if id != input.package_id {
            components.push(crate_item(krate, Kind::Library)?);
        }
    }
    let base = base_item(input.base)?;
    deps.push((base.bom_ref.clone().unwrap_or_default(), Vec::new()));
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    components.push(base);
    deps.sort();
    Ok(Inventory {
        root: app,
        components,
        dependencies: deps,
        epoch: input.epoch,
        platform: input.platform,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn krate(name: &str, source: CrateSource) -> Crate {
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

    /// An app linking itoa, on the built-in base.
    pub(crate) fn sample() -> Inventory {
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
            binary_sha512: &"ef".repeat(64),
            platform: Platform::LinuxAmd64,
            features: &FeatureFlags::default(),
            epoch: 1_700_000_000,
            base: &BaseInfo::Builtin,
        };
        let inventory = assemble_inventory(&input).unwrap();
        // Byte-identical when made again.
        assert_eq!(assemble_inventory(&input).unwrap(), inventory);
        inventory
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
        assert_eq!(
            license(Some("MIT/Apache-2.0")),
            Some(License::Expression("MIT OR Apache-2.0".into()))
        );
        assert_eq!(
            license(Some("Proprietary, ask us")),
            Some(License::Name("Proprietary, ask us".into()))
        );
        assert!(license(Some("  ")).is_none());
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
    fn inventory_has_binary_and_file_hashes_and_sorted_components() {
        let inv = sample();
        assert_eq!(inv.root.hashes.len(), 2);
        assert_eq!(inv.root.hashes[1].alg, HashAlg::Sha512);
        assert_eq!(inv.components[0].name, "itoa");
        assert_eq!(inv.components[0].description.as_deref(), Some("a   crate"));
        let base = inv.components.last().unwrap();
        assert_eq!(base.kind, Kind::OperatingSystem);
        assert!(base.children.iter().all(|f| f.hashes.len() == 2));
        let ca = base
            .children
            .iter()
            .find(|c| c.name == "/etc/ssl/certs/ca-certificates.crt")
            .unwrap();
        assert_eq!(ca.version, WEBPKI_ROOT_CERTS_VERSION);
        assert_eq!(inv.dependencies.len(), 3);
    }
}
