//! `cargo containerize run`: the normal pipeline with `--load`, then the one selected
//! image in the foreground the way the generated Deployment runs it: user 65532, a
//! read-only root with a tmpfs `/tmp`, every capability dropped, no new privileges, each
//! exposed port published on 127.0.0.1, the container removed on exit. Like `ko run`, but
//! local. Ctrl-C stops it and exits 130.

use std::process::{Command, Stdio};

use crate::cli::RunArgs;
use crate::commands::{Error, Outcome};
use crate::compose::{LocalRun, TMPFS};
use crate::config::{self, Env, LoadTarget, Runtime};
use crate::output::{Shell, Verbosity};
use crate::pipeline::{self, Mode};

/// The `docker run` / `podman run` arguments for `image`, hardened like the Deployment
/// (and like its compose.yaml service): `ports` are `HOST:CONTAINER[/udp]` on 127.0.0.1,
/// `env` is `K=V` on top of the run's environment.
pub fn run_args(
    image: &str,
    local: &LocalRun,
    ports: &[String],
    env: &[String],
    args: &[String],
) -> Vec<String> {
    let tmpfs = format!("{TMPFS}:rw,mode=1777");
    let mut out: Vec<String> = [
        "run",
        "--rm",
        "--user",
        &local.user,
        "--read-only",
        "--tmpfs",
        &tmpfs,
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for p in ports {
        out.extend(["--publish".into(), format!("127.0.0.1:{p}")]);
    }
    for (k, v) in &local.env {
        out.extend(["--env".into(), format!("{k}={v}")]);
    }
    for e in env {
        out.extend(["--env".into(), e.clone()]);
    }
    out.push(image.to_string());
    out.extend(args.iter().cloned());
    out
}

/// Builds, loads and runs the selected image.
pub fn exec(args: RunArgs, env: &Env, shell: &mut Shell) -> Result<Outcome, Error> {
    let mut settings = config::resolve(args.build, env)?;
    shell.set_verbosity(settings.verbosity);
    // Which image, before anything is built.
    let mut quiet = Shell::from_write(
        Box::new(std::io::sink()),
        Box::new(std::io::sink()),
        Verbosity::Quiet,
    );
    let pipeline::Outcome::Planned(plan) = pipeline::run(&settings, Mode::Plan, &mut quiet)? else {
        unreachable!("Mode::Plan ends with the plan")
    };
    let image = match plan.images.as_slice() {
        [one] => one.clone(),
        several => {
            let names: Vec<&str> = several.iter().map(|i| i.bin.as_str()).collect();
            return Err(Error::Usage {
                message: format!(
                    "`cargo containerize run` runs one image, but {} are selected: {}",
                    several.len(),
                    names.join(", ")
                ),
                help: "pick one with --bin NAME (or -p PACKAGE)".into(),
            });
        }
    };
    let runtime = match args.runtime.as_deref() {
        Some("podman") => Runtime::Podman,
        Some(_) => Runtime::Docker,
        None => crate::load::pick_runtime(shell)
            .map_err(|e| Error::Run(crate::image::sink::SinkError::from(e).into()))?,
    };
    settings.load = Some(LoadTarget {
        runtime,
        containerd_namespace: String::new(),
    });
    let pipeline::Outcome::Images(summaries) = pipeline::run(&settings, Mode::Build, shell)? else {
        unreachable!("Mode::Build ends with images")
    };
    let Some(name) = summaries.first().and_then(|s| s.loaded.first()) else {
        unreachable!("--load names every image it loads")
    };
    let local = LocalRun::of(&image);
    let ports: Vec<String> = if args.publish.is_empty() {
        local.publish_args()
    } else {
        args.publish.clone()
    };
    let program = if runtime == Runtime::Podman {
        "podman"
    } else {
        "docker"
    };
    // Named, so Ctrl-C can stop it: the binary is PID 1 in the container, where SIGINT's
    // default action does not apply, so the runtime is asked to stop it instead.
    let container = format!("{}-{}", image.name, std::process::id());
    let mut run = run_args(name, &local, &ports, &args.env, &args.args);
    run.splice(2..2, ["--name".to_string(), container.clone()]);
    shell.status("Running", format!("`{program} {}`", run.join(" ")));
    let mut child = Command::new(program)
        .args(&run)
        .stdin(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Usage {
            message: format!("could not start `{program}`: {e}"),
            help: format!("install {program}, or pick the other runtime with --runtime"),
        })?;
    let mut stopping = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                return Err(Error::Usage {
                    message: format!("lost `{program} run`: {e}"),
                    help: format!("check `{program} ps -a` for {container}"),
                });
            }
        }
        if crate::interrupt::requested() && !stopping {
            stopping = true;
            shell.status("Stopping", format!("{container} (Ctrl-C)"));
            // `stop` waits up to 5 s for the binary, then kills it; --rm removes it.
            let _ = Command::new(program)
                .args(["stop", "--time", "5", &container])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    crate::interrupt::check().map_err(|e| Error::Run(e.into()))?;
    match status.code() {
        Some(0) => Ok(Outcome::default()),
        code => Err(Error::Exited {
            command: format!("{program} run"),
            code: code.unwrap_or(1),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_runs_as_the_deployment_would() {
        let local = LocalRun {
            user: "65532:65532".into(),
            ports: Vec::new(),
            env: [("RUST_LOG".to_string(), "debug".to_string())].into(),
        };
        let args = run_args(
            "hello-http:latest",
            &local,
            &["8080:8080".into()],
            &["A=1".into()],
            &["echo".into(), "hi".into()],
        );
        assert_eq!(
            args.join(" "),
            "run --rm --user 65532:65532 --read-only --tmpfs /tmp:rw,mode=1777 --cap-drop ALL \
             --security-opt no-new-privileges --publish 127.0.0.1:8080:8080 --env RUST_LOG=debug --env A=1 \
             hello-http:latest echo hi"
        );
    }
}
