//! ImagePlan × platform × layers → the OCI image configuration (oci-spec types),
//! serialized canonically.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};

use crate::canonical::{JsonBlob, to_canonical_json};
use crate::config::APP_DIR;
use crate::image::Layer;
use crate::image::base::CA_BUNDLE_PATH;
use crate::plan::ImagePlan;
use crate::platform::Platform;
use oci_spec::image::ANNOTATION_CREATED;

/// Assembly failed (an oci-spec builder rejected a value).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("failed to assemble the {what} of `{image}`: {message}")]
#[diagnostic(code(containerize::image))]
pub struct AssembleError {
    /// Which document.
    pub what: &'static str,
    /// The image.
    pub image: String,
    /// The builder's error.
    pub message: String,
}

impl AssembleError {
    /// Wraps an error for `image`.
    pub fn new(what: &'static str, image: &str, e: impl std::fmt::Display) -> Self {
        AssembleError {
            what,
            image: image.to_string(),
            message: e.to_string(),
        }
    }
}

/// The binary's path inside the image.
pub fn entrypoint(bin: &str) -> String {
    format!("{APP_DIR}/{bin}")
}

/// The environment every image gets unless the user overrides a variable.
fn default_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        ),
        ("SSL_CERT_FILE".to_string(), format!("/{CA_BUNDLE_PATH}")),
    ])
}

/// The OCI architecture for a platform.
pub fn arch(platform: Platform) -> Arch {
    match platform {
        Platform::LinuxAmd64 => Arch::Amd64,
        Platform::LinuxArm64 => Arch::ARM64,
    }
}

/// Builds the config blob.
///
/// `base_env` is the base image's `Env` (`K=V`): it overrides the built-in defaults and is
/// overridden by the configured `env`.
pub fn image_config(
    plan: &ImagePlan,
    platform: Platform,
    layers: &[Layer],
    base_env: &[String],
) -> Result<JsonBlob, AssembleError> {
    let err = |e: &dyn std::fmt::Display| AssembleError::new("config", &plan.name, e);
    let s = &plan.settings;
    let mut env = default_env();
    env.extend(
        base_env
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env.extend(s.env.clone());
    let mut labels: HashMap<String, String> = plan
        .annotations
        .iter()
        .filter(|(k, _)| {
            k.starts_with("org.opencontainers.image.") && !s.annotations.contains_key(*k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend(s.labels.clone());
    let mut config = ConfigBuilder::default()
        .user(s.user.clone())
        .env(
            env.into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .entrypoint(vec![entrypoint(&plan.bin)])
        .working_dir(s.workdir.clone())
        .labels(labels);
    if !s.args.is_empty() {
        config = config.cmd(s.args.clone());
    }
    if !s.exposed_ports.is_empty() {
        config = config.exposed_ports(
            s.exposed_ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        );
    }
    let config = config.build().map_err(|e| err(&e))?;
    let created = plan
        .annotations
        .get(ANNOTATION_CREATED)
        .cloned()
        .unwrap_or_default();
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.created_by.clone())
                .build()
                .map_err(|e| err(&e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.blob.diff_id.clone())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(|e| err(&e))?;
    let cfg = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(arch(platform))
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs)
        .history(history)
        .build()
        .map_err(|e| err(&e))?;
    to_canonical_json(&cfg).map_err(|e| err(&e))
}
