//! SLSA Provenance v1 in an in-toto Statement v1: the typed documents and their assembly
//! from plain values. See <https://slsa.dev/spec/v1.0/provenance> and
//! <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>.
//!
//! Nothing here reads the clock: `runDetails.metadata` has no `startedOn`/`finishedOn`
//! (they would make every build's provenance differ), and the only time recorded is
//! `SOURCE_DATE_EPOCH`, when the user set it, as an internal parameter of the build.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::build::RustcVersion;
use crate::plan::{ProvenancePlan, SourceRef, Workflow};
use crate::platform::Platform;
use crate::sbom::bom::repository_of;
use crate::{TOOL_NAME, TOOL_VERSION};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA Provenance v1.
pub const PREDICATE_TYPE: &str = crate::image::artifact::SLSA_PREDICATE;
/// `buildDefinition.buildType`: what the parameters below mean, documented in
/// `docs/provenance.md`.
pub const BUILD_TYPE: &str = "https://github.com/cargo-containerize/cargo-containerize/blob/main/docs/provenance.md#build-type-v1";

/// An in-toto Statement v1 with a SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: &'static str,
    /// The platform manifest.
    pub subject: Vec<ResourceDescriptor>,
    /// [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: &'static str,
    /// The provenance.
    pub predicate: Provenance,
}

/// An in-toto ResourceDescriptor (at least one of name, uri, digest is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm → lowercase hex (`sha256`, `gitCommit`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// Extra facts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// SLSA Provenance v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built, how, from what.
    pub build_definition: BuildDefinition,
    /// Who built it.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: &'static str,
    /// What the user chose.
    pub external_parameters: ExternalParameters,
    /// What the tool chose.
    pub internal_parameters: InternalParameters,
    /// Source, lockfile, compiler, base.
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// `externalParameters`: the command line and metadata choices that shape the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    /// The binary's package.
    pub packages: Vec<String>,
    /// The `[[bin]]` target.
    pub bins: Vec<String>,
    /// `--features`.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// `--profile`.
    pub profile: String,
    /// Every platform of the image.
    pub platforms: Vec<String>,
    /// The platform this statement is about.
    pub platform: String,
    /// `--base`, if the image is built on a registry image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The source repository (`git+URL[@ref]`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The GitHub workflow that ran the build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowParameters>,
}

/// `externalParameters.workflow`, as GitHub's own builders record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowParameters {
    /// `refs/heads/main`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// `https://github.com/owner/repo`.
    pub repository: String,
    /// `.github/workflows/file.yml`.
    pub path: String,
}

/// `internalParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalParameters {
    /// `cargo-containerize`.
    pub tool: &'static str,
    /// Its version.
    pub tool_version: &'static str,
    /// The musl target triple.
    pub target: &'static str,
    /// `gzip` / `zstd`.
    pub compression: String,
    /// The binary carries cargo-auditable's dependency list.
    pub auditable: bool,
    /// `SOURCE_DATE_EPOCH`, only when the user set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<u64>,
}

/// `runDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunDetails {
    /// The builder.
    pub builder: Builder,
    /// The CI invocation; absent locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Builder {
    /// [`ProvenancePlan::builder_id`].
    pub id: String,
    /// Tool → version.
    pub version: BTreeMap<String, String>,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// The CI run attempt.
    pub invocation_id: String,
}

/// Everything one statement is made of.
#[derive(Debug, Clone)]
pub struct ProvenanceInput<'a> {
    /// The plan's builder, invocation and source.
    pub who: &'a ProvenancePlan,
    /// The subject's name: the repository the image is pushed to, else its name.
    pub subject_name: &'a str,
    /// The platform manifest's digest (`sha256:<hex>`).
    pub subject_digest: &'a str,
    /// The image's package.
    pub package: &'a str,
    /// The image's `[[bin]]`.
    pub bin: &'a str,
    /// The platform.
    pub platform: Platform,
    /// Every platform of the image.
    pub platforms: &'a [Platform],
    /// `--features`, `--all-features`, `--no-default-features`, `--profile`.
    pub features: &'a [String],
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// `--profile`.
    pub profile: &'a str,
    /// `--base` as given, with the digest it resolved to.
    pub base: Option<(&'a str, &'a str)>,
    /// sha256 hex of `Cargo.lock`, if there is one.
    pub lockfile_sha256: Option<&'a str>,
    /// The compiler.
    pub rustc: Option<&'a RustcVersion>,
    /// `gzip` / `zstd`.
    pub compression: String,
    /// The binary carries cargo-auditable's list.
    pub auditable: bool,
    /// `SOURCE_DATE_EPOCH`, only when the user set it.
    pub source_date_epoch: Option<u64>,
}

fn digest(alg: &str, hex: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(alg.to_string(), hex.to_string())])
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn source_dependency(source: &SourceRef) -> ResourceDescriptor {
    let mut annotations = BTreeMap::new();
    if source.dirty {
        // The commit does not describe the tree that was built.
        annotations.insert("dirty".to_string(), "true".to_string());
    }
    ResourceDescriptor {
        name: source.uri.is_none().then(|| "source".to_string()),
        uri: source.uri.clone(),
        digest: source
            .commit
            .as_deref()
            .map(|c| digest("gitCommit", c))
            .unwrap_or_default(),
        annotations,
    }
}

fn rustc_dependency(rustc: &RustcVersion) -> ResourceDescriptor {
    let mut annotations = BTreeMap::from([("version".to_string(), rustc.version.clone())]);
    if let Some(host) = &rustc.host {
        annotations.insert("host".into(), host.clone());
    }
    // Release builds of rustc name the rust-lang/rust commit they were built from.
    let commit = rustc.commit_hash.as_deref().filter(|c| is_hex(c, 40));
    ResourceDescriptor {
        name: Some("rustc".into()),
        uri: rustc
            .release
            .as_ref()
            .map(|r| format!("pkg:generic/rustc@{r}")),
        digest: commit.map(|c| digest("gitCommit", c)).unwrap_or_default(),
        annotations,
    }
}

fn workflow(w: &Workflow) -> WorkflowParameters {
    WorkflowParameters {
        git_ref: w.git_ref.clone(),
        repository: w.repository.clone(),
        path: w.path.clone(),
    }
}

/// Assembles the statement about one platform manifest.
pub fn assemble_statement(input: &ProvenanceInput<'_>) -> Statement {
    let who = input.who;
    let mut deps = Vec::new();
    if let Some(source) = &who.source {
        deps.push(source_dependency(source));
    }
    if let Some(hex) = input.lockfile_sha256 {
        deps.push(ResourceDescriptor {
            name: Some("Cargo.lock".into()),
            digest: digest("sha256", hex),
            ..ResourceDescriptor::default()
        });
    }
    if let Some(rustc) = input.rustc {
        deps.push(rustc_dependency(rustc));
    }
    if let Some((name, base_digest)) = input.base {
        let hex = base_digest.strip_prefix("sha256:").unwrap_or(base_digest);
        deps.push(ResourceDescriptor {
            name: Some(name.to_string()),
            uri: Some(format!("oci://{}@{base_digest}", repository_of(name))),
            digest: digest("sha256", hex),
            ..ResourceDescriptor::default()
        });
    }
    let subject_hex = input
        .subject_digest
        .strip_prefix("sha256:")
        .unwrap_or(input.subject_digest);
    Statement {
        statement_type: STATEMENT_TYPE,
        subject: vec![ResourceDescriptor {
            name: Some(input.subject_name.to_string()),
            digest: digest("sha256", subject_hex),
            ..ResourceDescriptor::default()
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters: ExternalParameters {
                    packages: vec![input.package.to_string()],
                    bins: vec![input.bin.to_string()],
                    features: input.features.to_vec(),
                    all_features: input.all_features,
                    no_default_features: input.no_default_features,
                    profile: input.profile.to_string(),
                    platforms: input.platforms.iter().map(ToString::to_string).collect(),
                    platform: input.platform.to_string(),
                    base: input.base.map(|(name, _)| name.to_string()),
                    source: who.source.as_ref().and_then(|s| s.uri.clone()),
                    workflow: who.workflow.as_ref().map(workflow),
                },
                internal_parameters: InternalParameters {
                    tool: TOOL_NAME,
                    tool_version: TOOL_VERSION,
                    target: input.platform.triple(),
                    compression: input.compression.clone(),
                    auditable: input.auditable,
                    source_date_epoch: input.source_date_epoch,
                },
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: who.builder_id.clone(),
                    version: BTreeMap::from([(TOOL_NAME.to_string(), TOOL_VERSION.to_string())]),
                },
                metadata: who.invocation_id.as_ref().map(|id| BuildMetadata {
                    invocation_id: id.clone(),
                }),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::LOCAL_BUILDER_ID;

    fn who(ci: bool) -> ProvenancePlan {
        ProvenancePlan {
            builder_id: if ci {
                "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1".into()
            } else {
                LOCAL_BUILDER_ID.into()
            },
            invocation_id: ci.then(|| "https://github.com/o/r/actions/runs/7/attempts/1".into()),
            workflow: None,
            source: Some(SourceRef {
                uri: Some("git+https://github.com/o/r@refs/tags/v1".into()),
                commit: Some("ab".repeat(20)),
                dirty: false,
            }),
            lockfile: "Cargo.lock".into(),
        }
    }

    fn input<'a>(who: &'a ProvenancePlan, rustc: &'a RustcVersion) -> ProvenanceInput<'a> {
        ProvenanceInput {
            who,
            subject_name: "ghcr.io/o/app",
            subject_digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            package: "app",
            bin: "app",
            platform: Platform::LinuxArm64,
            platforms: &Platform::ALL,
            features: &[],
            all_features: false,
            no_default_features: false,
            profile: "release",
            base: Some(("gcr.io/distroless/static:nonroot", "sha256:feed")),
            lockfile_sha256: Some("cafe"),
            rustc: Some(rustc),
            compression: "gzip".into(),
            auditable: true,
            source_date_epoch: None,
        }
    }

    #[test]
    fn statement_has_subject_predicate_and_dependencies() {
        let rustc = RustcVersion {
            version: "rustc 1.89.0 (29483883e 2025-08-04)".into(),
            release: Some("1.89.0".into()),
            commit_hash: Some("29483883eed69d5fb4db01964cdf2af4d86e9cb2".into()),
            host: Some("x86_64-unknown-linux-gnu".into()),
        };
        let who = who(false);
        let v = serde_json::to_value(assemble_statement(&input(&who, &rustc))).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["name"], "ghcr.io/o/app");
        assert_eq!(
            v["subject"][0]["digest"]["sha256"],
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
        let def = &v["predicate"]["buildDefinition"];
        assert_eq!(def["externalParameters"]["platform"], "linux/arm64");
        assert_eq!(
            def["internalParameters"]["target"],
            "aarch64-unknown-linux-musl"
        );
        let deps = def["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps[0]["digest"]["gitCommit"], "ab".repeat(20));
        assert_eq!(deps[1]["name"], "Cargo.lock");
        assert_eq!(deps[2]["uri"], "pkg:generic/rustc@1.89.0");
        assert_eq!(deps[3]["uri"], "oci://gcr.io/distroless/static@sha256:feed");
        // Locally: no invocation, so no metadata; never a time.
        assert!(v["predicate"]["runDetails"].get("metadata").is_none());
        assert_eq!(
            v["predicate"]["runDetails"]["builder"]["id"],
            LOCAL_BUILDER_ID
        );
        assert!(!v.to_string().contains("startedOn"));
    }

    #[test]
    fn ci_runs_record_the_invocation() {
        let who = who(true);
        let rustc = RustcVersion::default();
        let v = serde_json::to_value(assemble_statement(&input(&who, &rustc))).unwrap();
        assert_eq!(
            v["predicate"]["runDetails"]["metadata"]["invocationId"],
            "https://github.com/o/r/actions/runs/7/attempts/1"
        );
    }
}
