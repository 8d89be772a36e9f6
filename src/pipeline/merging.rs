//! `merge`: the platforms that `--per-platform` runs pushed, joined into each image's
//! index, pushed and tagged; then the files a push leaves.

use std::time::Instant;

use super::outputs::{report_images, summarize, write_compose, write_kube, write_summaries};
use super::{ImageResult, Outcome, Summarized, finished, lock_out_dir};
use crate::attest;
use crate::error::Error;
use crate::events::Event;
use crate::image::layout::Layout;
use crate::image::sink::Delivered;
use crate::output::{Shell, count};
use crate::plan::{self, ImagePlan, Plan};
use crate::reference::ImageReference;
use crate::registry;

/// [`Mode::Merge`]: every image's platforms read from the registry (under their
/// per-platform tags, checked against this plan), joined into the index a single run
/// over the same platforms writes, pushed with the tags last; then the files a push
/// leaves (`image.json`, `--image-refs`, Kubernetes YAML, compose.yaml).
pub(super) fn merge(
    root: &std::path::Path,
    plan: &Plan,
    signer: Option<&attest::key::SigningIdentity>,
    started: Instant,
    shell: &mut Shell,
) -> Result<Outcome, Error> {
    let _lock = lock_out_dir(plan, shell)?;
    let pushed: Vec<&ImagePlan> = plan
        .images
        .iter()
        .filter(|i| i.repository.is_some())
        .collect();
    let jobs: Vec<registry::merge::MergeJob> = pushed
        .iter()
        .filter_map(|image| {
            Some(registry::merge::MergeJob {
                repository: image.repository.clone()?,
                platforms: image
                    .platforms
                    .iter()
                    .map(|p| {
                        let repository = image.repository.clone()?;
                        // By digest where a `--from` file recorded it, else by tag.
                        let r = match plan.merge_from.get(&(image.name.clone(), p.platform)) {
                            Some(digest) => ImageReference {
                                repository,
                                tag: None,
                                digest: Some(digest.clone()),
                            },
                            None => ImageReference {
                                repository,
                                tag: Some(plan::platform_tag(&image.pin_tag, p.platform)),
                                digest: None,
                            },
                        };
                        Some((p.platform, r))
                    })
                    .collect::<Option<_>>()?,
                annotations: &image.annotations,
            })
        })
        .collect();
    let docs = registry::pull::DocCache::new(plan.cache_dir.join("merge"));
    let fetched = registry::merge::fetch_platforms(&jobs, &docs, &plan.registry, shell)?;
    let mut results = Vec::new();
    for (image, images) in pushed.into_iter().zip(fetched) {
        results.push(ImageResult {
            plan: image,
            set: crate::image::manifest::assemble_set(image, images)?,
            artifacts: Vec::new(),
            delivered: Vec::new(),
        });
    }
    let push_jobs: Vec<registry::PushJob> = results
        .iter()
        .filter_map(|r| {
            Some(registry::PushJob {
                set: &r.set,
                repository: r.plan.repository.clone()?,
                tags: r.plan.tags.clone(),
            })
        })
        .collect();
    let merged = registry::merge::push_indexes(&push_jobs, &plan.registry, shell)?;
    if let Some(signer) = signer {
        // The index is new: its signature goes up now, from the run's layout.
        let layout = Layout::open(&plan.layout_dir)?;
        let mut targets = Vec::new();
        for result in &mut results {
            result.artifacts =
                attest::sign_image(plan, result.plan, &result.set, &[], signer, true)?;
            layout.put_artifacts(&result.artifacts)?;
        }
        for result in &results {
            if let Some(repo) = &result.plan.repository {
                targets.extend(result.artifacts.iter().map(|a| (repo.clone(), a)));
            }
        }
        registry::referrers::push_artifacts(&targets, &layout, &plan.registry, shell)?;
    }
    for (result, p) in results.iter_mut().zip(merged) {
        let event = crate::events::PushedEvent {
            name: result.set.name.clone(),
            reference: p.reference(),
            repository: p.repository.to_string(),
            digest: p.digest.clone(),
            tags: p.tags.clone(),
            uploaded_bytes: p.uploaded_bytes,
        };
        shell.emit(&Event::ImagePushed(event.clone()));
        result.delivered.push(Delivered::Pushed(event));
    }
    // The index is pushed: no platform was pushed on its own.
    let done: Vec<Summarized> = results.iter().map(|r| (r, summarize(r, false))).collect();
    write_summaries(plan, &done)?;
    write_kube(root, plan, &done, shell)?;
    write_compose(plan, &done, shell)?;
    report_images(&done, shell);
    finished(
        shell,
        started,
        count(done.len(), "merged image", "merged images"),
    );
    Ok(Outcome::Images(done.into_iter().map(|(_, s)| s).collect()))
}
