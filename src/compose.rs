//! Built images → `compose.yaml`: one service per image, run the way its Deployment runs
//! it, so `docker compose up` / `podman-compose up` starts the whole workspace.
//!
//! In: the [`Plan`] and, per image, the reference that goes into `image:` (the loaded
//! `name:tag`, or the pushed `registry/repo@sha256:…`). Out: `compose.yaml` next to the
//! Kubernetes YAML. [`LocalRun`] is the one description of how an image runs on a
//! developer's machine; `cargo containerize run` uses it too.
//!
//! The file is compose_spec values serialized by serde-saphyr, never assembled as text.
//! There is no `version:` key (the Compose Specification has none; docker-compose 1.27+,
//! `docker compose` and podman-compose read it without).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use compose_spec::MapKey;
use compose_spec::service::healthcheck::{Command as Check, Healthcheck};
use compose_spec::service::ports::{Protocol, ShortPort, ShortRanges};
use compose_spec::service::{AbsolutePath, PullPolicy, Restart, User};
use compose_spec::{Identifier, ItemOrList, ListOrMap, Service};
use indexmap::IndexMap;
use serde::Serialize;

use crate::config::Port;
use crate::config::kube::ProbeSettings;
use crate::exit;
use crate::fsutil::{self, FsError};
use crate::image::config::entrypoint;
use crate::output::Shell;
use crate::plan::{ImagePlan, Plan};
use crate::reference::ImageReference;

/// Errors writing `compose.yaml`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ComposeError {
    /// A value compose cannot hold (an image name that is no service name, say).
    #[error("image `{image}` cannot become a compose service: {message}")]
    #[diagnostic(
        code(containerize::config),
        help(
            "set compose = false in [package.metadata.containerize.bin.{image}], or pass --no-compose"
        )
    )]
    Value {
        /// The image.
        image: String,
        /// What compose_spec refused.
        message: String,
    },
    /// serde-saphyr failed (a bug).
    #[error("failed to serialize compose.yaml: {0}")]
    #[diagnostic(code(containerize::internal))]
    Serialize(String),
    /// Writing the file.
    #[error(transparent)]
    #[diagnostic(code(containerize::io))]
    Fs(#[from] FsError),
}

impl ComposeError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            ComposeError::Value { .. } => exit::CONFIG,
            _ => exit::OUTPUT,
        }
    }
}

/// Where the writable scratch space is: the root filesystem is read-only.
pub const TMPFS: &str = "/tmp";

/// How one image runs on a developer's machine, hardened like its Deployment: the uid
/// and gid, a read-only root with a tmpfs [`TMPFS`], every capability dropped, no new
/// privileges, the declared ports on 127.0.0.1 only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRun {
    /// `uid:gid` (the image's user; `nonroot` is 65532:65532).
    pub user: String,
    /// Declared ports, each published on 127.0.0.1 under the same number.
    pub ports: Vec<Port>,
    /// The Deployment's environment (the image's own is in the image).
    pub env: BTreeMap<String, String>,
}

impl LocalRun {
    /// The local run of `image`.
    pub fn of(image: &ImagePlan) -> LocalRun {
        let user = match image.settings.user.as_str() {
            "nonroot" => "65532:65532".to_string(),
            other => other.to_string(),
        };
        LocalRun {
            user,
            ports: image.settings.exposed_ports.clone(),
            env: image.settings.kubernetes.env.clone(),
        }
    }

    /// `HOST:CONTAINER[/udp]` for `docker run --publish 127.0.0.1:…`.
    pub fn publish_args(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| {
                let proto = if p.udp { "/udp" } else { "" };
                format!("{0}:{0}{proto}", p.number)
            })
            .collect()
    }
}

/// Defaults for a healthcheck when no readiness probe gives the timing.
const CHECK_INTERVAL: Duration = Duration::from_secs(10);
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const CHECK_RETRIES: u64 = 3;

fn value_error(image: &str, e: impl std::fmt::Display) -> ComposeError {
    ComposeError::Value {
        image: image.to_string(),
        message: e.to_string(),
    }
}

/// `healthcheck:` running the binary's own health-check mode, timed like the readiness
/// probe when one is declared.
fn healthcheck(image: &ImagePlan, args: &[String]) -> Healthcheck {
    let mut test = vec![entrypoint(&image.bin)];
    test.extend(args.iter().cloned());
    let probe: Option<&ProbeSettings> = image.settings.kubernetes.probes.readiness.as_ref();
    let secs = |n: i32| Duration::from_secs(u64::try_from(n).unwrap_or(0));
    Healthcheck::Command(Check {
        test: Some(test.into()),
        interval: Some(probe.map_or(CHECK_INTERVAL, |p| secs(p.period_seconds))),
        timeout: Some(probe.map_or(CHECK_TIMEOUT, |p| secs(p.timeout_seconds))),
        retries: Some(probe.map_or(CHECK_RETRIES, |p| {
            u64::try_from(p.failure_threshold).unwrap_or(CHECK_RETRIES)
        })),
        start_period: probe.and_then(|p| p.initial_delay_seconds).map(secs),
        ..Check::default()
    })
}

/// The document: the services, in plan order. compose_spec's own `Compose` holds the
/// image as its `Image`, which refuses a registry with a port but no dot in its host
/// (`localhost:5000/app`, `registry:5000/app`) although docker, podman and compose all
/// accept it; so the image is an [`ImageReference`] and the rest of each service is
/// compose_spec's.
#[derive(Serialize)]
struct Document {
    services: IndexMap<Identifier, Entry>,
}

/// One service: its image reference, then compose_spec's fields.
#[derive(Serialize)]
struct Entry {
    image: String,
    #[serde(flatten)]
    service: Service,
}

/// The service of one image.
fn service(image: &ImagePlan, reference: &str, pushed: bool) -> Result<Entry, ComposeError> {
    let run = LocalRun::of(image);
    let err = |e: &dyn std::fmt::Display| value_error(&image.name, e);
    let mut ports = compose_spec::service::Ports::default();
    for p in &run.ports {
        let ranges =
            ShortRanges::new(Some(p.number.into()), p.number.into()).map_err(|e| err(&e))?;
        ports.insert(
            ShortPort {
                host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                ranges,
                protocol: p.udp.then_some(Protocol::Udp),
            }
            .into(),
        );
    }
    let environment: compose_spec::Map = run
        .env
        .iter()
        .map(|(k, v)| {
            Ok((
                MapKey::new(k.as_str()).map_err(|e| err(&e))?,
                Some(compose_spec::Value::String(v.clone())),
            ))
        })
        .collect::<Result<_, ComposeError>>()?;
    // Validated, but written as given: spelled out, a short local name would become
    // `docker.io/library/…`, which podman does not resolve to its `localhost/…` image.
    ImageReference::parse(reference).map_err(|e| err(&e))?;
    let service = Service {
        // A local image is not in any registry: compose must not try docker.io for it.
        pull_policy: (!pushed).then_some(PullPolicy::Never),
        user: Some(User::parse(run.user.as_str()).map_err(|e| err(&e))?),
        read_only: true,
        tmpfs: Some(ItemOrList::Item(
            AbsolutePath::new(TMPFS).map_err(|e| err(&e))?,
        )),
        cap_drop: ["ALL".to_string()].into_iter().collect(),
        security_opt: ["no-new-privileges:true".to_string()].into_iter().collect(),
        ports,
        environment: ListOrMap::Map(environment),
        healthcheck: image
            .settings
            .health_check
            .as_deref()
            .map(|args| healthcheck(image, args)),
        // A binary that runs to completion (kind = "job"/"cronjob") runs once per `up`;
        // restarting it would run it again and again.
        restart: Some(if image.settings.kubernetes.workload.runs_to_completion() {
            Restart::No
        } else {
            Restart::UnlessStopped
        }),
        ..Service::default()
    };
    Ok(Entry {
        image: reference.to_string(),
        service,
    })
}

/// The header comment: where the file came from and how to start it.
fn header(names: &[&str], all_pushed: bool) -> String {
    let how = if all_pushed {
        "# Start: docker compose up (or podman-compose up); the images are the pushed digests.\n"
    } else {
        "# Start: cargo containerize --load, then docker compose up (or podman-compose up)\n\
         # in this directory; `--load podman` for podman.\n"
    };
    format!(
        "# Services {}, written by cargo containerize.\n{how}\
         # Configure them in [package.metadata.containerize] (compose = false drops one,\n\
         # health-check = [\"--health-check\"] adds a healthcheck); edits here are overwritten.\n",
        names.join(", ")
    )
}

/// `compose.yaml`'s text for the images with `compose = true`; `refs` holds each image's
/// `image:` reference and whether it is pushed, in plan order.
pub fn render(plan: &Plan, refs: &[(String, bool)]) -> Result<Option<String>, ComposeError> {
    let mut compose = Document {
        services: IndexMap::new(),
    };
    let mut names = Vec::new();
    let mut all_pushed = true;
    for (image, (reference, pushed)) in plan.images.iter().zip(refs) {
        if !image.settings.compose {
            continue;
        }
        let id = Identifier::new(image.name.as_str()).map_err(|e| value_error(&image.name, e))?;
        compose
            .services
            .insert(id, service(image, reference, *pushed)?);
        names.push(image.name.as_str());
        all_pushed &= *pushed;
    }
    if names.is_empty() {
        return Ok(None);
    }
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    let yaml = serde_saphyr::to_string_with_options(&compose, options)
        .map_err(|e| ComposeError::Serialize(e.to_string()))?;
    Ok(Some(format!("{}{yaml}", header(&names, all_pushed))))
}

/// Writes the plan's `compose.yaml`, if it has one and an image is in it.
pub fn write(
    plan: &Plan,
    refs: &[(String, bool)],
    shell: &mut Shell,
) -> Result<Option<PathBuf>, ComposeError> {
    let Some(path) = &plan.outputs.compose else {
        return Ok(None);
    };
    let Some(text) = render(plan, refs)? else {
        return Ok(None);
    };
    if let Some(dir) = path.parent() {
        fsutil::create_dir_all(dir)?;
    }
    fsutil::write_atomic(path, text.as_bytes())?;
    shell.status("Writing", format!("compose file {}", path.display()));
    Ok(Some(path.clone()))
}
