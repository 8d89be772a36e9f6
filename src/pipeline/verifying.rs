//! `verify`: the registry's image, its signatures and attestations checked, then this
//! checkout rebuilt and compared with it platform by platform.

use super::{Mode, Outcome, run};
use crate::attest;
use crate::config::Settings;
use crate::error::Error;
use crate::fsutil;
use crate::image::layout::Layout;
use crate::output::Shell;
use crate::registry;
use crate::sbom;

/// `verify`: the registry's image and its referrers are read and checked (signatures
/// with `key`, the attestations' subjects), then this checkout is built for the same
/// platforms and each platform's manifest compared; a difference names the first layer
/// and file, and the config fields. Returns the verified reference, by digest.
pub fn verify(
    mut settings: Settings,
    target: &crate::reference::ImageReference,
    key: Option<&str>,
    shell: &mut Shell,
) -> Result<String, Error> {
    let docs =
        tempfile::tempdir().map_err(|e| fsutil::FsError::new("create", std::env::temp_dir(), e))?;
    let cache = registry::pull::DocCache::new(docs.path().to_path_buf());
    shell.status("Reading", target.to_string());
    let remote = registry::inspect::inspect(target, &settings.registry, &cache, shell)?;
    let pinned = format!("{}@{}", target.repository, remote.digest);
    let mut problems = Vec::new();
    for finding in attest::check::check_referrers(&remote, key) {
        if finding.ok {
            shell.status("Checked", &finding.message);
        } else {
            problems.push(finding.message);
        }
    }
    if key.is_none() {
        shell.note("signatures were not checked: give the public key with --key");
    }
    if settings.platforms.is_none() {
        settings.platforms = Some(remote.platforms.iter().map(|p| p.platform).collect());
    }
    settings.push = false;
    let Outcome::Rebuilt(plan, summaries) = run(&settings, Mode::Verify, shell)? else {
        unreachable!("Mode::Verify ends with the rebuilt images")
    };
    let repo = target.repository.to_string();
    let index = plan
        .images
        .iter()
        .position(|i| i.repository.as_ref().is_some_and(|r| r.to_string() == repo))
        .or((plan.images.len() == 1).then_some(0));
    let Some(index) = index else {
        let names: Vec<String> = plan
            .images
            .iter()
            .map(|i| match &i.repository {
                Some(r) => format!("{} ({r})", i.name),
                None => i.name.clone(),
            })
            .collect();
        return Err(attest::check::VerifyFailed::new(
            &pinned,
            &[format!("no image of this checkout is pushed to {repo}; it builds {}", names.join(", "))],
            "select the image with -p/--bin and give the repository it is pushed to with --repo (or the metadata's `repository`)",
        )
        .into());
    };
    let summary = &summaries[index];
    let local = Layout::open(&plan.layout_dir)?;
    let scratch = Layout::open(&plan.cache_dir.join("verify"))?;
    for theirs in &remote.platforms {
        let platform = theirs.platform.to_string();
        let Some(ours) = summary.platforms.iter().find(|p| p.platform == platform) else {
            problems.push(format!("{platform}: this checkout does not build it"));
            continue;
        };
        let planned = plan.images[index]
            .platforms
            .iter()
            .find(|p| p.platform == theirs.platform);
        let local_sboms: Vec<attest::check::LocalSbom> = planned
            .into_iter()
            .flat_map(|p| &p.sboms)
            .filter_map(|s| {
                let (artifact_type, kind) = sbom::artifact_type(s.format);
                Some(attest::check::LocalSbom {
                    artifact_type,
                    kind,
                    bytes: std::fs::read(&s.path).ok()?,
                })
            })
            .collect();
        for finding in
            attest::check::compare_sboms(&remote, &theirs.manifest.digest, &platform, &local_sboms)
        {
            if finding.ok {
                shell.status("Verified", &finding.message);
            } else {
                problems.push(finding.message);
            }
        }
        if ours.digest == theirs.manifest.digest {
            shell.status(
                "Verified",
                format!(
                    "{platform} manifest {} is the one this checkout builds",
                    ours.digest
                ),
            );
            continue;
        }
        let read =
            |digest: &str| std::fs::read(crate::image::blob_path(&local.blobs_dir(), digest));
        let our_manifest = read(&ours.digest).unwrap_or_default();
        let d = crate::image::diff::compare_manifests(&our_manifest, &theirs.manifest.bytes);
        problems.push(format!(
            "{platform}: the registry's manifest is {}, this checkout builds {}",
            theirs.manifest.digest, ours.digest
        ));
        if let Some((a, b)) = &d.first_layer {
            problems.push(layer_difference(
                &platform,
                a.as_ref(),
                b.as_ref(),
                &local,
                &scratch,
                target,
                &settings,
                shell,
            )?);
        }
        if d.config {
            let our_config: serde_json::Value =
                serde_json::from_slice(&our_manifest).unwrap_or_default();
            let our_config = our_config["config"]["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let fields = crate::image::diff::json_differences(
                &read(&our_config).unwrap_or_default(),
                &theirs.config.bytes,
            );
            if !fields.is_empty() {
                problems.push(format!(
                    "{platform}: config fields that differ: {}",
                    fields.join(", ")
                ));
            }
        }
        if !d.annotations.is_empty() {
            problems.push(format!(
                "{platform}: manifest annotations that differ: {}",
                d.annotations.join(", ")
            ));
        }
    }
    if remote.index.is_some() && summary.digest != remote.digest && problems.is_empty() {
        problems.push(format!(
            "the registry's index is {}, this checkout builds {} over the same manifests",
            remote.digest, summary.digest
        ));
    }
    if !problems.is_empty() {
        return Err(attest::check::VerifyFailed::new(
            &pinned,
            &problems,
            "rebuild from the commit the image names (its org.opencontainers.image.revision annotation), with the same --platform, --profile, features and SOURCE_DATE_EPOCH",
        )
        .into());
    }
    shell.status(
        "Verified",
        format!("{pinned}: signatures, attestations and every platform match"),
    );
    Ok(pinned)
}

/// The first differing layer of one platform, and the first differing file in it (the
/// registry's layer is downloaded into `scratch` to be read).
#[allow(clippy::too_many_arguments)]
pub(super) fn layer_difference(
    platform: &str,
    ours: Option<&crate::image::diff::LayerRef>,
    theirs: Option<&crate::image::diff::LayerRef>,
    local: &Layout,
    scratch: &Layout,
    target: &crate::reference::ImageReference,
    settings: &Settings,
    shell: &mut Shell,
) -> Result<String, Error> {
    use crate::image::diff::{first_file_difference, layer_files};
    let (Some(a), Some(b)) = (ours, theirs) else {
        let (only, l) = match (ours, theirs) {
            (Some(l), _) => ("the rebuilt image", l),
            (_, Some(l)) => ("the registry's image", l),
            (None, None) => return Ok(format!("{platform}: the layers differ")),
        };
        return Ok(format!(
            "{platform}: layer {} ({}) is only in {only}",
            l.index + 1,
            l.digest
        ));
    };
    registry::inspect::fetch_layer(
        target,
        &b.digest,
        b.size,
        scratch,
        &settings.registry,
        shell,
    )?;
    let blob = |layout: &Layout, l: &crate::image::diff::LayerRef| {
        layer_files(
            &crate::image::blob_path(&layout.blobs_dir(), &l.digest),
            l.compression,
        )
        .map_err(|e| fsutil::FsError::new("read", layout.dir(), e))
    };
    let (mine, reg) = (blob(local, a)?, blob(scratch, b)?);
    let layer = format!(
        "{platform}: layer {} differs (registry {}, rebuilt {})",
        a.index + 1,
        b.digest,
        a.digest
    );
    let facts = |f: &Option<crate::image::diff::FileFacts>| match f {
        Some(f) => format!("{} bytes, {}, {}", f.size, f.sha256, f.kind),
        None => "absent".to_string(),
    };
    Ok(match first_file_difference(&mine, &reg) {
        Some(d) => format!(
            "{layer}; first differing file {}: registry {}; rebuilt {}",
            d.path,
            facts(&d.theirs),
            facts(&d.ours)
        ),
        None => {
            format!("{layer}; the files in it are the same (the tar or its compression differs)")
        }
    })
}
