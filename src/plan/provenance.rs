//! Workspace × settings → [`ProvenancePlan`]: who built (the GitHub workflow at its ref in
//! Actions, else this tool on a local machine), which CI run, and from which source. Fixed
//! while planning, so the attestation stage only assembles values and `plan` can show them.

use std::path::PathBuf;

use oci_spec::image::ANNOTATION_SOURCE;

use crate::config::Settings;
use crate::plan::ImagePlan;
use crate::workspace::Workspace;

/// What the provenance says about who built, decided here so the attestation stage only
/// assembles: the builder, the CI invocation and the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenancePlan {
    /// `runDetails.builder.id`: the GitHub workflow at its ref in Actions, else
    /// [`LOCAL_BUILDER_ID`].
    pub builder_id: String,
    /// `runDetails.metadata.invocationId`: the Actions run attempt's URL; `None` locally.
    pub invocation_id: Option<String>,
    /// The workflow that ran the build (`externalParameters.workflow`), in Actions.
    pub workflow: Option<Workflow>,
    /// The source repository and commit, when known.
    pub source: Option<SourceRef>,
    /// The workspace's `Cargo.lock`.
    pub lockfile: PathBuf,
}

/// A GitHub Actions workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// `https://github.com/owner/repo`.
    pub repository: String,
    /// `.github/workflows/file.yml`.
    pub path: String,
    /// `refs/heads/main`.
    pub git_ref: String,
}

/// Where the workspace's source is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// `git+https://…` (with `@<ref>` in Actions), when known.
    pub uri: Option<String>,
    /// The commit.
    pub commit: Option<String>,
    /// The tree had uncommitted changes.
    pub dirty: bool,
}

/// `runDetails.builder.id` of a build outside CI: the tool on someone's machine, which is
/// what SLSA Build L1 describes (provenance exists; nothing vouches for the builder).
pub const LOCAL_BUILDER_ID: &str = "https://github.com/cargo-containerize/cargo-containerize/blob/main/docs/provenance.md#local-builder";

/// The builder, invocation, workflow and source of a run, from the CI environment and git.
pub fn plan_provenance(
    ws: &Workspace,
    settings: &Settings,
    images: &[ImagePlan],
) -> ProvenancePlan {
    let ci = &settings.ci;
    let server = ci.server_url.as_deref().unwrap_or("https://github.com");
    let workflow = ci.workflow_ref.as_deref().and_then(|w| {
        // `owner/repo/.github/workflows/file.yml@refs/heads/main`
        let (path, git_ref) = w.split_once('@')?;
        let repo = ci.repository.as_deref()?;
        let file = path.strip_prefix(repo)?.trim_start_matches('/');
        Some(Workflow {
            repository: format!("{server}/{repo}"),
            path: file.to_string(),
            git_ref: git_ref.to_string(),
        })
    });
    let builder_id = match &workflow {
        Some(w) => format!("{}/{}@{}", w.repository, w.path, w.git_ref),
        None => LOCAL_BUILDER_ID.to_string(),
    };
    let invocation_id = match (&ci.repository, &ci.run_id) {
        (Some(repo), Some(run)) => Some(format!(
            "{server}/{repo}/actions/runs/{run}/attempts/{}",
            ci.run_attempt.as_deref().unwrap_or("1")
        )),
        _ => None,
    };
    // In Actions the repository and ref of the run; locally the package's `repository`.
    let uri = match (&ci.repository, &ci.git_ref) {
        (Some(repo), Some(r)) => Some(format!("git+{server}/{repo}@{r}")),
        _ => images
            .iter()
            .find_map(|i| i.annotations.get(ANNOTATION_SOURCE))
            .map(|u| format!("git+{}", u.trim_start_matches("git+"))),
    };
    let commit = ws.git.commit.clone().or_else(|| ci.sha.clone());
    let source = (uri.is_some() || commit.is_some()).then_some(SourceRef {
        uri,
        commit,
        dirty: ws.git.dirty,
    });
    ProvenancePlan {
        builder_id,
        invocation_id,
        workflow,
        source,
        lockfile: ws.root.join("Cargo.lock"),
    }
}
