//! `--push` as a [`Sink`]: every image with a repository goes to its registry (blobs,
//! manifests, tags), then its artifacts (SBOMs) as referrers of its platform manifests.

use crate::config::registry::RegistrySettings;
use crate::events::PushedEvent;
use crate::exit;
use crate::image::layout::Layout;
use crate::image::sink::{Delivered, Packaged, Sink, SinkError};
use crate::output::Shell;
use crate::registry::{self, PushJob, RegistryError};

/// Pushes to the registries the plan names.
#[derive(Debug, Clone)]
pub struct RegistrySink(pub RegistrySettings);

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
        let jobs: Vec<PushJob> = images
            .iter()
            .filter_map(|p| {
                Some(PushJob {
                    set: p.set,
                    repository: p.plan.repository.clone()?,
                    tags: p.plan.tags.clone(),
                })
            })
            .collect();
        let targets: Vec<_> = images
            .iter()
            .filter_map(|p| Some((p.plan.repository.clone()?, p.artifacts)))
            .flat_map(|(repo, artifacts)| artifacts.iter().map(move |a| (repo.clone(), a)))
            .collect();
        let pushed = registry::push_all(&jobs, &targets, source, &self.0, shell)?;
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
