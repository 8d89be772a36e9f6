//! Plan + packaged images → one SLSA provenance per image and platform: an in-toto
//! Statement v1 whose subject is the platform manifest, written to
//! `target/containerize/<image>/provenance.<os>-<arch>.intoto.json` and turned into an OCI
//! 1.1 artifact (`application/vnd.in-toto+json`) that the layout and `--push` attach to
//! that manifest, exactly like the SBOMs (never inside the image index).
//!
//! The stage only assembles: who built (builder, CI invocation, source) is decided by the
//! plan, the compiler's version comes from the build stage, the manifests from packaging.
//! Its output, [`Attestation`], holds the statement's canonical bytes; a signing step can
//! wrap those bytes in a DSSE envelope (payload type `application/vnd.in-toto+json`) and
//! hand on the envelope instead, without this module changing. See [`provenance`] for the
//! document itself.

pub mod check;
pub mod key;
pub mod provenance;
pub mod sign;

use std::path::PathBuf;

use crate::build::RustcVersion;
use crate::canonical::{JsonBlob, to_canonical_json};
use crate::fsutil::{self, FsError};
use crate::image::ImageSet;
use crate::image::artifact::{Artifact, IN_TOTO_JSON, attach};
use crate::image::config::AssembleError;
use crate::plan::{EPOCH_FROM_ENV, ImagePlan, Plan};
use crate::platform::Platform;
use crate::sbom::bom::BaseInfo;
use provenance::{ProvenanceInput, assemble_statement};

/// Errors making attestations.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AttestError {
    /// The statement could not be serialized.
    #[error("failed to assemble the provenance of `{image}` ({platform}): {message}")]
    #[diagnostic(
        code(containerize::attest),
        help("this is a bug; --provenance=false skips the provenance")
    )]
    Assemble {
        /// The image.
        image: String,
        /// The platform.
        platform: Platform,
        /// What failed.
        message: String,
    },
    /// Reading `Cargo.lock` or writing the file.
    #[error(transparent)]
    #[diagnostic(
        code(containerize::attest),
        help("check that the directory is writable and the disk is not full")
    )]
    Fs(#[from] FsError),
    /// `--sign-key` could not be used.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Key(#[from] key::KeyError),
    /// A signature bundle could not be assembled.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sign(#[from] AssembleError),
}

/// One written attestation (unsigned in-toto Statement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// Image name.
    pub image: String,
    /// Platform.
    pub platform: Platform,
    /// The file next to the image.
    pub path: PathBuf,
    /// `artifactType` / media type of [`Attestation::blob`].
    pub media_type: &'static str,
    /// The statement's canonical bytes and digest.
    pub blob: JsonBlob,
}

/// What the build stage and packaging contribute.
#[derive(Debug, Clone, Copy)]
pub struct Built<'a> {
    /// The compiler, if `rustc -vV` answered.
    pub rustc: Option<&'a RustcVersion>,
    /// The base the images are built on.
    pub base: &'a BaseInfo,
}

/// The subject name: where the image is pushed (`registry/path`), else its name.
fn subject_name(image: &ImagePlan) -> String {
    image
        .repository
        .as_ref()
        .map_or_else(|| image.name.clone(), ToString::to_string)
}

/// Writes the provenance of every platform image that the plan gives one, and removes
/// those of earlier runs that this run did not write.
pub fn write_provenance(
    plan: &Plan,
    sets: &[&ImageSet],
    built: Built<'_>,
) -> Result<Vec<Attestation>, AttestError> {
    let mut out = Vec::new();
    let lockfile = &plan.provenance.lockfile;
    let lock_sha = match std::fs::read(lockfile) {
        Ok(bytes) => Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(FsError::new("read", lockfile, e).into()),
    };
    let base = match built.base {
        BaseInfo::Builtin => None,
        BaseInfo::Pulled { name, digest } => Some((name.as_str(), digest.as_str())),
    };
    let platforms_of = |image: &ImagePlan| -> Vec<Platform> {
        image.platforms.iter().map(|p| p.platform).collect()
    };
    for image in &plan.images {
        let Some(set) = sets.iter().find(|s| s.name == image.name) else {
            continue;
        };
        for planned in &image.platforms {
            let (Some(path), Some(subject)) = (
                &planned.provenance,
                set.images.iter().find(|i| i.platform == planned.platform),
            ) else {
                continue;
            };
            let statement = assemble_statement(&ProvenanceInput {
                who: &plan.provenance,
                subject_name: &subject_name(image),
                subject_digest: &subject.manifest.digest,
                package: &image.package,
                bin: &image.bin,
                platform: planned.platform,
                platforms: &platforms_of(image),
                features: &plan.cargo.features,
                all_features: plan.cargo.all_features,
                no_default_features: plan.cargo.no_default_features,
                profile: &plan.cargo.profile,
                base,
                lockfile_sha256: lock_sha.as_deref(),
                rustc: built.rustc,
                compression: plan.compression.to_string(),
                auditable: image.settings.auditable,
                source_date_epoch: (plan.epoch_source == EPOCH_FROM_ENV).then_some(plan.epoch),
            });
            let blob = to_canonical_json(&statement).map_err(|e| AttestError::Assemble {
                image: image.name.clone(),
                platform: planned.platform,
                message: e.to_string(),
            })?;
            fsutil::create_dir_all(&image.out_dir)?;
            fsutil::write_atomic(path, &blob.bytes)?;
            out.push(Attestation {
                image: image.name.clone(),
                platform: planned.platform,
                path: path.clone(),
                media_type: IN_TOTO_JSON,
                blob,
            });
        }
    }
    out.sort_by(|a, b| (&a.image, a.platform).cmp(&(&b.image, b.platform)));
    for image in &plan.images {
        let keep: Vec<&std::path::Path> = out.iter().map(|a| a.path.as_path()).collect();
        fsutil::remove_stale(
            &image.out_dir,
            |name| name.starts_with("provenance.") && name.ends_with(".intoto.json"),
            &keep,
        )?;
    }
    Ok(out)
}

/// The key `--sign-key` names, opened (before anything is built, so a wrong passphrase
/// costs nothing).
pub fn signing_identity(plan: &Plan) -> Result<Option<key::SigningIdentity>, AttestError> {
    let Some(sign) = &plan.outputs.sign else {
        return Ok(None);
    };
    let passphrase = sign.passphrase.as_ref().map(|p| p.0.as_str());
    Ok(Some(key::load_key(&sign.key, passphrase)?))
}

/// The bundles signing `set` and its `attestations` (SBOM and provenance artifacts),
/// its index too unless the plan pushes each platform on its own; with `index_only`
/// (`merge`: the platforms were signed by the runs that pushed them) only the index.
pub fn sign_image(
    plan: &Plan,
    image: &ImagePlan,
    set: &ImageSet,
    attestations: &[Artifact],
    identity: &key::SigningIdentity,
    index_only: bool,
) -> Result<Vec<Artifact>, AttestError> {
    let which = sign::Signed {
        manifests: !index_only,
        index: !plan.outputs.per_platform,
    };
    Ok(sign::sign_image(
        set,
        attestations,
        identity,
        &subject_name(image),
        which,
    )?)
}

/// The artifact manifests that attach an image's attestations to its platform manifests.
pub fn artifacts(
    set: &ImageSet,
    attestations: &[Attestation],
) -> Result<Vec<Artifact>, AssembleError> {
    let docs = attestations
        .iter()
        .map(|a| (a.image.as_str(), a.platform, a.media_type, &a.blob));
    attach(set, docs, &Default::default())
}
