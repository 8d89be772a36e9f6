//! `--push` as a [`Sink`]: every image with a repository goes to its registry (blobs,
//! manifests, tags), then its artifacts (SBOMs) as referrers of its platform manifests.
//! With `--per-platform`, each platform's manifest goes up as an image of its own, tagged
//! `TAG-ARCH`, for `merge` to join into the index.

use crate::config::registry::RegistrySettings;
use crate::events::PushedEvent;
use crate::exit;
use crate::image::ImageSet;
use crate::image::layout::Layout;
use crate::image::sink::{Delivered, Packaged, Sink, SinkError};
use crate::output::Shell;
use crate::registry::{self, PushJob, RegistryError};

/// Pushes to the registries the plan names.
#[derive(Debug, Clone)]
pub struct RegistrySink {
    /// How registries are spoken to.
    pub settings: RegistrySettings,
    /// `--per-platform`: every platform's manifest on its own, no index.
    pub per_platform: bool,
}

impl From<RegistryError> for SinkError {
    fn from(e: RegistryError) -> Self {
        SinkError::new(e, exit::REGISTRY)
    }
}

impl Sink for RegistrySink {
    fn write(
        &self,
        source: &Layout,
        images: &[Packaged<'_>],
        shell: &mut Shell,
    ) -> Result<Vec<Delivered>, SinkError> {
        // What goes up: each image as it is, or (`--per-platform`) each platform's
        // manifest on its own, under its per-platform tags.
        let sets: Vec<(&Packaged<'_>, ImageSet, Vec<String>)> = images
            .iter()
            .flat_map(|p| -> Vec<_> {
                if !self.per_platform {
                    return vec![(p, p.set.clone(), p.plan.tags.clone())];
                }
                let tags = p.plan.registry_tags(true);
                p.set
                    .images
                    .iter()
                    .map(|img| {
                        let set = ImageSet {
                            images: vec![img.clone()],
                            index: None,
                            ..p.set.clone()
                        };
                        let mine = tags
                            .iter()
                            .filter(|(pl, _)| *pl == Some(img.platform))
                            .map(|(_, t)| t.clone())
                            .collect();
                        (p, set, mine)
                    })
                    .collect()
            })
            .collect();
        let jobs: Vec<PushJob> = sets
            .iter()
            .filter_map(|(p, set, tags)| {
                Some(PushJob {
                    set,
                    repository: p.plan.repository.clone()?,
                    tags: tags.clone(),
                })
            })
            .collect();
        let targets: Vec<_> = images
            .iter()
            .filter_map(|p| Some((p.plan.repository.clone()?, p.artifacts)))
            .flat_map(|(repo, artifacts)| artifacts.iter().map(move |a| (repo.clone(), a)))
            .collect();
        let pushed = registry::push_all(&jobs, &targets, source, &self.settings, shell)?;
        Ok(jobs
            .iter()
            .zip(pushed)
            .map(|(job, p)| {
                Delivered::Pushed(PushedEvent {
                    name: job.set.name.clone(),
                    reference: p.reference(),
                    repository: p.repository.to_string(),
                    digest: p.digest.clone(),
                    tags: p.tags.clone(),
                    uploaded_bytes: p.uploaded_bytes,
                })
            })
            .collect())
    }
}
