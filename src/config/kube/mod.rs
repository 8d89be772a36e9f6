//! `[*.metadata.containerize.kubernetes]` layers → [`KubeSettings`] for one image.
//!
//! Same two steps as `config`: raw layers with all-`Option` fields ([`KubeLayer`]) are
//! validated one by one against the table they came from (so an error names the key and the
//! `Cargo.toml`), then overlaid (workspace < package < bin) onto the defaults.
//!
//! In: the layers `config` collected and the image's `exposed-ports`. Out: the resolved
//! types below, which `render` and `template` read. The files follow those steps:
//! `layer` (the serde shapes as written), `validate` (one layer against its table) and
//! `resolve` (merge over the defaults); this file holds the defaults and resolved types.

mod layer;
mod resolve;
mod validate;

use std::collections::BTreeMap;

use crate::config::{Port, Source};

pub use layer::{
    AutoscalingLayer, DisruptionBudgetLayer, EgressMode, FileVolumeLayer, IngressLayer,
    IntOrPercent, KubeLayer, MetricsLayer, NetworkPolicyLayer, PeerLayer, ProbeLayer, ProbesLayer,
    QuantitiesLayer, ResourcesLayer, ServiceLayer, Switchable, WorkloadKind,
};
pub use resolve::resolve;
pub use validate::{
    cron_schedule, dns_label, dns_subdomain, env_name, label_value, qualified_key, quantity,
};

/// Replicas: two, so a rolling update or a node drain never takes the service down.
pub const DEFAULT_REPLICAS: i32 = 2;
/// Old ReplicaSets kept for `kubectl rollout undo`; the API default (10) mostly adds clutter.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 5;
/// The API default, written out so it is visible and reviewable.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Container port used when something needs a port but none is declared.
pub const DEFAULT_PORT: u16 = 8080;
/// The Service's port (the conventional HTTP port, mapped to the container's `http`).
pub const DEFAULT_SERVICE_PORT: u16 = 80;
/// Requests that schedule a small service anywhere.
pub const DEFAULT_CPU_REQUEST: &str = "100m";
/// See [`DEFAULT_CPU_REQUEST`].
pub const DEFAULT_MEMORY_REQUEST: &str = "128Mi";
/// A memory limit bounds a leak to one pod; no CPU limit by default (throttling hurts tail
/// latency more than it protects neighbours, which requests already do).
pub const DEFAULT_MEMORY_LIMIT: &str = "512Mi";

/// One resolved probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    /// HTTP path, or `None` for a TCP probe.
    pub path: Option<String>,
    /// Port number; `None` means the `http` port (by name).
    pub port: Option<u16>,
    /// `initialDelaySeconds`, written only when set.
    pub initial_delay_seconds: Option<i32>,
    /// `periodSeconds`.
    pub period_seconds: i32,
    /// `timeoutSeconds`.
    pub timeout_seconds: i32,
    /// `failureThreshold`.
    pub failure_threshold: i32,
}

/// Resolved probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// Liveness.
    pub liveness: Option<ProbeSettings>,
    /// Readiness.
    pub readiness: Option<ProbeSettings>,
    /// Startup.
    pub startup: Option<ProbeSettings>,
}

/// Resolved requests and limits (`None`: not written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// `requests.cpu`.
    pub cpu_request: Option<String>,
    /// `requests.memory`.
    pub memory_request: Option<String>,
    /// `limits.cpu`.
    pub cpu_limit: Option<String>,
    /// `limits.memory`.
    pub memory_limit: Option<String>,
}

/// The resolved Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// `spec.type`.
    pub type_: String,
    /// The Service port.
    pub port: u16,
}

/// Resolved Prometheus scrape target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// Port number.
    pub port: u16,
    /// Path.
    pub path: String,
}

/// Resolved autoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoscaling {
    /// `minReplicas`.
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// Average CPU utilization target, percent.
    pub cpu_utilization: i32,
}

/// Resolved disruption budget: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisruptionBudget {
    /// `minAvailable`.
    MinAvailable(IntOrPercent),
    /// `maxUnavailable`.
    MaxUnavailable(IntOrPercent),
}

/// Resolved Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// Host.
    pub host: String,
    /// Path prefix.
    pub path: String,
    /// `ingressClassName`.
    pub class_name: Option<String>,
    /// TLS Secret name.
    pub tls_secret: Option<String>,
}

/// One resolved NetworkPolicy peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// Pod labels (empty with no namespaces and no cidr: every pod of the namespace).
    pub pods: BTreeMap<String, String>,
    /// Namespace labels, if the peer is in other namespaces.
    pub namespaces: Option<BTreeMap<String, String>>,
    /// An IP range instead of pods.
    pub cidr: Option<String>,
    /// Ports (egress only; empty: all).
    pub ports: Vec<Port>,
}

/// Resolved NetworkPolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Who may connect to the declared ports; `None`: any pod of the namespace (or any
    /// source at all when the Service is exposed outside the namespace).
    pub from: Option<Vec<Peer>>,
    /// `Some`: egress denied except DNS to kube-system and these peers.
    pub egress_allow: Option<Vec<Peer>>,
}

/// A Secret or ConfigMap mounted read-only as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileVolume {
    /// The object's name.
    pub name: String,
    /// The mount path.
    pub mount: String,
}

/// Resolved Job settings (also the CronJob's job template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// `backoffLimit`.
    pub backoff_limit: i32,
    /// `ttlSecondsAfterFinished`.
    pub ttl_seconds_after_finished: i32,
}

/// What runs the binary, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    /// A Deployment (with Service, HPA, PDB, Ingress as configured).
    Deployment,
    /// A Job.
    Job(JobSettings),
    /// A CronJob.
    CronJob {
        /// `schedule`, validated.
        schedule: String,
        /// `concurrencyPolicy`.
        concurrency_policy: String,
        /// The job template's settings.
        job: JobSettings,
    },
}

impl Workload {
    /// Whether the binary runs to completion (a Job or CronJob), so nothing restarts it.
    pub fn runs_to_completion(&self) -> bool {
        !matches!(self, Workload::Deployment)
    }
}

/// Retries of a Job before it fails (the API default, 6, retries for about six minutes).
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;
/// A finished Job and its pod's logs stay a day, then are deleted.
pub const DEFAULT_TTL_SECONDS_AFTER_FINISHED: i32 = 86_400;

/// Everything the Kubernetes YAML of one image needs from the metadata, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeSettings {
    /// Write YAML for this image.
    pub enabled: bool,
    /// Deployment, Job or CronJob.
    pub workload: Workload,
    /// Object name override.
    pub name: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// Write a Namespace object for `namespace`.
    pub create_namespace: bool,
    /// `app.kubernetes.io/component` override.
    pub component: Option<String>,
    /// `app.kubernetes.io/part-of` override.
    pub part_of: Option<String>,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// Extra object annotations.
    pub annotations: BTreeMap<String, String>,
    /// Pod template annotations.
    pub pod_annotations: BTreeMap<String, String>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: i32,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_period_seconds: i64,
    /// RollingUpdate `maxSurge`.
    pub max_surge: IntOrPercent,
    /// RollingUpdate `maxUnavailable`.
    pub max_unavailable: IntOrPercent,
    /// The `http` container port, if the image serves one.
    pub port: Option<u16>,
    /// Every declared port (`exposed-ports`), sorted.
    pub exposed_ports: Vec<Port>,
    /// The Service, if any.
    pub service: Option<ServiceSettings>,
    /// Probes.
    pub probes: Probes,
    /// Requests and limits.
    pub resources: Resources,
    /// Pod environment.
    pub env: BTreeMap<String, String>,
    /// `envFrom` ConfigMaps.
    pub env_from_config_maps: Vec<String>,
    /// `envFrom` Secrets.
    pub env_from_secrets: Vec<String>,
    /// Secrets mounted as files.
    pub secret_volumes: Vec<FileVolume>,
    /// ConfigMaps mounted as files.
    pub config_map_volumes: Vec<FileVolume>,
    /// Variable receiving the CPU budget.
    pub cpu_env: Option<String>,
    /// Prometheus scraping.
    pub metrics: Option<Metrics>,
    /// HorizontalPodAutoscaler.
    pub autoscaling: Option<Autoscaling>,
    /// PodDisruptionBudget.
    pub disruption_budget: Option<DisruptionBudget>,
    /// Ingress.
    pub ingress: Option<Ingress>,
    /// NetworkPolicy (`None`: `network-policy = false`).
    pub network_policy: Option<NetworkPolicy>,
    /// Template directory as written, and the table that set it.
    pub templates: Option<(String, Source)>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            enabled: true,
            workload: Workload::Deployment,
            name: None,
            namespace: None,
            create_namespace: true,
            component: None,
            part_of: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            replicas: DEFAULT_REPLICAS,
            revision_history_limit: DEFAULT_REVISION_HISTORY_LIMIT,
            termination_grace_period_seconds: DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS,
            max_surge: IntOrPercent::Int(1),
            max_unavailable: IntOrPercent::Int(0),
            port: None,
            exposed_ports: Vec::new(),
            service: None,
            probes: Probes::default(),
            resources: Resources {
                cpu_request: Some(DEFAULT_CPU_REQUEST.into()),
                memory_request: Some(DEFAULT_MEMORY_REQUEST.into()),
                cpu_limit: None,
                memory_limit: Some(DEFAULT_MEMORY_LIMIT.into()),
            },
            env: BTreeMap::new(),
            env_from_config_maps: Vec::new(),
            env_from_secrets: Vec::new(),
            secret_volumes: Vec::new(),
            config_map_volumes: Vec::new(),
            cpu_env: None,
            metrics: None,
            autoscaling: None,
            disruption_budget: None,
            ingress: None,
            network_policy: Some(NetworkPolicy {
                from: None,
                egress_allow: None,
            }),
            templates: None,
        }
    }
}
