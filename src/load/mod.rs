//! `--load`: images into a local container runtime, as a [`Sink`]. Each image goes in for
//! one platform (the host's) under `<image>:<tag>` for every tag, and `REPO/<image>:<tag>`
//! when it has a repository, so the Kubernetes YAML's reference resolves on a local node.
//!
//! The runtime is driven through its own CLI, so its usual environment applies
//! (`DOCKER_HOST` and docker contexts, `CONTAINERS_CONF`/`CONTAINERS_STORAGE_CONF`,
//! `CONTAINERD_ADDRESS`/`CONTAINERD_SNAPSHOTTER`). The archive (docker's `manifest.json`
//! plus the blobs it names, see [`crate::image::archive`]) is streamed to the CLI's stdin:
//! no temporary copy of the layers.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{LoadTarget, Runtime};
use crate::events::LoadedEvent;
use crate::exit;
use crate::image::archive::{DockerEntry, docker_archive, docker_entry, pick_platform};
use crate::image::layout::Layout;
use crate::image::sink::{Delivered, Packaged, Sink, SinkError, local_names};
use crate::image::tar::write_tar;
use crate::output::Shell;
use crate::platform::Platform;

/// Loads into the runtime the plan names.
#[derive(Debug, Clone)]
pub struct LoadSink {
    /// Runtime and containerd namespace.
    pub target: LoadTarget,
    /// The platform loaded (the host's).
    pub platform: Option<Platform>,
}

/// Errors loading images.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    /// The runtime's CLI is not installed.
    #[error("`{program}` was not found, so the images could not be loaded into {runtime}")]
    #[diagnostic(
        code(containerize::load),
        help(
            "install {runtime}, or pick another runtime: --load=docker, --load=podman or --load=containerd (the OCI layout is written either way)"
        )
    )]
    NotFound {
        /// docker, podman or containerd.
        runtime: &'static str,
        /// The CLI looked for.
        program: &'static str,
    },
    /// Neither docker nor podman answered.
    #[error("no container runtime answered: tried {tried}")]
    #[diagnostic(
        code(containerize::load),
        help(
            "start the docker daemon (or set DOCKER_HOST), install podman, or pass --load=containerd; the OCI layout is written either way"
        )
    )]
    NoRuntime {
        /// What was tried and what it said.
        tried: String,
    },
    /// The runtime refused the archive or its daemon did not answer.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    #[diagnostic(code(containerize::load), help("{help}"))]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
        /// What to check.
        help: &'static str,
    },
}

impl From<LoadError> for SinkError {
    fn from(e: LoadError) -> Self {
        SinkError::new(e, exit::OUTPUT)
    }
}

/// The CLI invocation that reads an archive on stdin, per runtime.
fn load_command(runtime: Runtime, namespace: &str) -> (Command, &'static str, &'static str) {
    match runtime {
        Runtime::Podman => {
            let mut c = Command::new("podman");
            c.arg("load");
            (c, "podman", "podman")
        }
        Runtime::Containerd => {
            let mut c = Command::new("ctr");
            c.args(["-n", namespace, "images", "import", "-"]);
            (c, "containerd", "ctr")
        }
        Runtime::Docker | Runtime::Auto => {
            let mut c = Command::new("docker");
            c.arg("load");
            (c, "docker", "docker")
        }
    }
}

fn help_for(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Containerd => {
            "check that containerd runs and CONTAINERD_ADDRESS points at its socket (the OCI layout is written either way)"
        }
        Runtime::Podman => "check `podman info` (the OCI layout is written either way)",
        Runtime::Docker | Runtime::Auto => {
            "check that the docker daemon runs (`docker info`) and DOCKER_HOST or the docker context points at it (the OCI layout is written either way)"
        }
    }
}

/// Runs `program args`, giving up after `limit`: whether it answered, and what it said.
fn answers(program: &str, args: &[&str], limit: Duration) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{program}`: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(_)) => {
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&out.stderr);
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Err(format!("`{program} {}`: {}", args.join(" "), first.trim()));
            }
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program} {}`: no answer in {}s",
                    args.join(" "),
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// `--load` without a value: docker if its daemon answers, else podman.
pub fn pick_runtime(shell: &mut Shell) -> Result<Runtime, LoadError> {
    let limit = Duration::from_secs(15);
    let mut tried = Vec::new();
    for (runtime, program, args) in [
        (
            Runtime::Docker,
            "docker",
            &["version", "--format", "{{.Server.Version}}"][..],
        ),
        (
            Runtime::Podman,
            "podman",
            &["version", "--format", "{{.Version}}"][..],
        ),
    ] {
        match answers(program, args, limit) {
            Ok(()) => {
                shell.verbose("Runtime", format!("{program} answered"));
                return Ok(runtime);
            }
            Err(e) => tried.push(e),
        }
    }
    Err(LoadError::NoRuntime {
        tried: tried.join("; "),
    })
}

/// Streams the archive of `entries` into the runtime's load command.
fn load(
    runtime: Runtime,
    namespace: &str,
    source: &Layout,
    entries: &[DockerEntry],
) -> Result<(), LoadError> {
    let (mut cmd, name, program) = load_command(runtime, namespace);
    let shown = format!(
        "{program} {}",
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let failed = |status: String, stderr: String| LoadError::Failed {
        command: shown.clone(),
        status,
        stderr,
        help: help_for(runtime),
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound {
                runtime: name,
                program,
            },
            _ => failed("could not start".into(), e.to_string()),
        })?;
    let members =
        docker_archive(source, entries).map_err(|e| failed("not run".into(), e.to_string()))?;
    let stdin = child.stdin.take();
    // The archive is written while the CLI reads it; its output is collected meanwhile.
    let written = std::thread::scope(|s| {
        let writer = s.spawn(move || -> std::io::Result<()> {
            let Some(stdin) = stdin else { return Ok(()) };
            let mut w = write_tar(members, 0, std::io::BufWriter::new(stdin))?;
            w.flush()
        });
        let out = child.wait_with_output();
        (crate::join(writer), out)
    });
    let (write, out) = written;
    let out = out.map_err(|e| failed("not waited for".into(), e.to_string()))?;
    if !out.status.success() {
        return Err(failed(
            out.status.to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    // A closed stdin with a successful exit still means the runtime did not read it all.
    write.map_err(|e| failed(out.status.to_string(), format!("writing the archive: {e}")))?;
    Ok(())
}

impl Sink for LoadSink {
    fn write(
        &self,
        source: &Layout,
        images: &[Packaged<'_>],
        shell: &mut Shell,
    ) -> Result<Vec<Delivered>, SinkError> {
        let runtime = match self.target.runtime {
            Runtime::Auto => pick_runtime(shell)?,
            r => r,
        };
        let runtime_name = load_command(runtime, "").1;
        let mut entries = Vec::new();
        let mut loaded = Vec::new();
        for p in images {
            let image = pick_platform(p.set, self.platform);
            if p.set.images.len() > 1 || Some(image.platform) != self.platform {
                let why = if Some(image.platform) == self.platform {
                    "the host's platform"
                } else {
                    "the image has no build for the host's platform"
                };
                shell.status(
                    "Selecting",
                    format!("{} for {} ({why})", image.platform, p.set.name),
                );
            }
            let mut names = local_names(p.set);
            if let Some(repo) = &p.plan.repository {
                names.extend(p.set.tags.iter().map(|t| format!("{repo}:{t}")));
            }
            entries.push(docker_entry(image, names.clone()));
            loaded.push(LoadedEvent {
                name: p.set.name.clone(),
                runtime: runtime_name.to_string(),
                references: names,
            });
        }
        shell.status(
            "Loading",
            format!(
                "{} into {runtime_name}",
                crate::output::count(entries.len(), "image", "images")
            ),
        );
        load(runtime, &self.target.containerd_namespace, source, &entries)?;
        for l in &loaded {
            shell.status(
                "Loaded",
                format!("{} into {runtime_name}", l.references.join(", ")),
            );
        }
        let delivered = loaded.into_iter().map(Delivered::Loaded).collect();
        Ok(delivered)
    }
}
