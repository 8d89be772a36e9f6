//! `[*.metadata.containerize.kubernetes]` tables as written → [`KubeLayer`] values.
//!
//! In: TOML deserialized by serde (kebab-case keys, unknown keys rejected). Out: raw layers
//! with all-`Option` fields, unchecked beyond their types; `validate` checks the values and
//! `resolve` merges them, so this file holds only the shapes users write.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// An integer or a percentage (`1`, `"25%"`), as `maxSurge` and PDB budgets take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    /// An absolute number of pods.
    Int(i32),
    /// `"25%"`, kept as written.
    Percent(String),
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = IntOrPercent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of pods (0 or more) or a percentage like \"25%\"")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<IntOrPercent, E> {
                i32::try_from(n)
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(IntOrPercent::Int)
                    .ok_or_else(|| E::custom(format!("{n} is not a number of pods (0 or more)")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<IntOrPercent, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<IntOrPercent, E> {
                match s.strip_suffix('%').map(str::parse::<u8>) {
                    Some(Ok(p)) if p <= 100 => Ok(IntOrPercent::Percent(s.to_string())),
                    _ => Err(E::custom(format!(
                        "\"{s}\" is not a percentage like \"25%\" (0-100)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `[…containerize.kubernetes]` as written. Every field is optional; absent means
/// "inherit from the lower layer, else the default".
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KubeLayer {
    /// `false` writes no YAML for this image.
    pub enabled: Option<bool>,
    /// `deployment` (default), `job` (runs to completion once) or `cronjob` (on `schedule`).
    pub kind: Option<WorkloadKind>,
    /// The CronJob's schedule, cron syntax (`"*/15 * * * *"`, `"@daily"`).
    pub schedule: Option<String>,
    /// Job `backoffLimit`: retries before the Job fails.
    pub backoff_limit: Option<i64>,
    /// Job `ttlSecondsAfterFinished`: when a finished Job (and its logs) is deleted.
    pub ttl_seconds_after_finished: Option<i64>,
    /// CronJob `concurrencyPolicy`: `Forbid` (default), `Allow` or `Replace`.
    pub concurrency_policy: Option<String>,
    /// Object and container name (default: the image name with `_`/`.` turned into `-`).
    pub name: Option<String>,
    /// `metadata.namespace` (default: none, so `kubectl -n` decides).
    pub namespace: Option<String>,
    /// `false`: no Namespace object for `namespace` (default: one is written).
    pub create_namespace: Option<bool>,
    /// `app.kubernetes.io/component` (default `server` with a port, else `worker`).
    pub component: Option<String>,
    /// `app.kubernetes.io/part-of` (default: the package name).
    pub part_of: Option<String>,
    /// Extra labels on every object and pod (merged across layers).
    pub labels: Option<BTreeMap<String, String>>,
    /// Extra annotations on every object (merged across layers).
    pub annotations: Option<BTreeMap<String, String>>,
    /// Annotations on the pod template (merged across layers).
    pub pod_annotations: Option<BTreeMap<String, String>>,
    /// `spec.replicas` (ignored when autoscaling, which owns the count).
    pub replicas: Option<i64>,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: Option<i64>,
    /// `terminationGracePeriodSeconds`.
    pub termination_grace_period_seconds: Option<i64>,
    /// RollingUpdate `maxSurge`.
    pub max_surge: Option<IntOrPercent>,
    /// RollingUpdate `maxUnavailable`.
    pub max_unavailable: Option<IntOrPercent>,
    /// The container port named `http` (default: the first TCP `exposed-ports` entry).
    pub port: Option<i64>,
    /// The Service.
    pub service: Option<ServiceLayer>,
    /// Liveness, readiness and startup probes (a TCP readiness probe on the `http` port
    /// unless declared); `false`: none at all.
    #[serde(default, deserialize_with = "bool_or_table")]
    pub probes: Option<ProbesLayer>,
    /// Requests and limits.
    pub resources: Option<ResourcesLayer>,
    /// Environment variables set by the pod (merged across layers; on top of the image's).
    pub env: Option<BTreeMap<String, String>>,
    /// ConfigMaps whose keys become environment variables (`envFrom`), by name.
    pub env_from_config_maps: Option<Vec<String>>,
    /// Secrets whose keys become environment variables (`envFrom`), by name.
    pub env_from_secrets: Option<Vec<String>>,
    /// Secrets mounted as read-only files (`[{ name = "tls", mount = "/etc/tls" }]`).
    pub secret_volumes: Option<Vec<FileVolumeLayer>>,
    /// ConfigMaps mounted as read-only files, the same way.
    pub config_map_volumes: Option<Vec<FileVolumeLayer>>,
    /// A variable set to the CPU budget in whole cores (e.g. `TOKIO_WORKER_THREADS`).
    pub cpu_env: Option<String>,
    /// Prometheus scrape annotations.
    pub metrics: Option<MetricsLayer>,
    /// A HorizontalPodAutoscaler (autoscaling/v2, CPU target).
    pub autoscaling: Option<AutoscalingLayer>,
    /// A PodDisruptionBudget.
    pub disruption_budget: Option<DisruptionBudgetLayer>,
    /// An Ingress to the Service.
    pub ingress: Option<IngressLayer>,
    /// The NetworkPolicy (on by default); `false`: none.
    #[serde(default, deserialize_with = "bool_or_table")]
    pub network_policy: Option<NetworkPolicyLayer>,
    /// A directory of templates (`deployment.yaml`, `service.yaml`) replacing the built-in
    /// ones, relative to the Cargo.toml that sets it.
    pub templates: Option<String>,
}

/// A Secret or ConfigMap mounted as files.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileVolumeLayer {
    /// The Secret's or ConfigMap's name.
    pub name: Option<String>,
    /// The directory its keys appear in, one file each.
    pub mount: Option<String>,
}

/// What runs the binary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// A server or worker that keeps running (apps/v1 Deployment).
    #[default]
    Deployment,
    /// Runs to completion once (batch/v1 Job).
    Job,
    /// Runs to completion on a schedule (batch/v1 CronJob).
    Cronjob,
}

/// `kubernetes.service`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceLayer {
    /// `false`: no Service even with a port.
    pub enabled: Option<bool>,
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The Service port (default 80).
    pub port: Option<i64>,
}

/// A table that can also be written as `true`/`false` (`probes = false`,
/// `network-policy = false`): the bool sets its `enabled`.
pub trait Switchable: Default {
    /// Sets `enabled`.
    fn switched(on: bool) -> Self;
}

/// Deserializes a [`Switchable`] table or a bool, keeping serde's errors (unknown keys,
/// with their path) for the table.
fn bool_or_table<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Switchable + Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Switchable + Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("`true`, `false` or a table")
        }
        fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<T, E> {
            Ok(T::switched(on))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(m))
        }
    }
    d.deserialize_any(V(std::marker::PhantomData)).map(Some)
}

/// `kubernetes.probes`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbesLayer {
    /// `false` (or `probes = false`): no probes, not even the default readiness probe.
    pub enabled: Option<bool>,
    /// Restarts the container when it fails (e.g. `/healthz`).
    pub liveness: Option<ProbeLayer>,
    /// Takes the pod out of the Service when it fails (e.g. `/readyz`).
    pub readiness: Option<ProbeLayer>,
    /// Holds the other probes back until the app has started (for slow starters).
    pub startup: Option<ProbeLayer>,
}

impl Switchable for ProbesLayer {
    fn switched(on: bool) -> Self {
        ProbesLayer {
            enabled: Some(on),
            ..Default::default()
        }
    }
}

/// `kubernetes.network-policy`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NetworkPolicyLayer {
    /// `false` (or `network-policy = false`): no NetworkPolicy.
    pub enabled: Option<bool>,
    /// Who may connect to the declared ports (default: any pod of the namespace).
    pub from: Option<Vec<PeerLayer>>,
    /// `allow` (default: egress unrestricted) or `deny` (DNS to kube-system, plus
    /// `egress-allow`).
    pub egress: Option<EgressMode>,
    /// What the pods may reach when `egress = "deny"`.
    pub egress_allow: Option<Vec<PeerLayer>>,
}

impl Switchable for NetworkPolicyLayer {
    fn switched(on: bool) -> Self {
        NetworkPolicyLayer {
            enabled: Some(on),
            ..Default::default()
        }
    }
}

/// Egress of a NetworkPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EgressMode {
    /// Unrestricted.
    Allow,
    /// DNS to kube-system and the `egress-allow` entries only.
    Deny,
}

/// One peer of a NetworkPolicy rule: pods (by labels) in namespaces (by labels), or an IP
/// range; `ports` only in `egress-allow`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PeerLayer {
    /// Pod labels (`podSelector.matchLabels`).
    pub pods: Option<BTreeMap<String, String>>,
    /// Namespace labels (`namespaceSelector.matchLabels`), e.g.
    /// `{ "kubernetes.io/metadata.name" = "monitoring" }`.
    pub namespaces: Option<BTreeMap<String, String>>,
    /// An IP range (`ipBlock.cidr`), e.g. `10.0.0.0/8`.
    pub cidr: Option<String>,
    /// Ports (`5432`, `"53/udp"`); all ports when absent.
    pub ports: Option<Vec<crate::config::Port>>,
}

/// One probe: an HTTP GET of `path`, or a TCP connect without one.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbeLayer {
    /// HTTP path; without it the probe is a TCP connect.
    pub path: Option<String>,
    /// Container port number (default: the `http` port).
    pub port: Option<i64>,
    /// `initialDelaySeconds` (default 0: use a startup probe for slow starters).
    pub initial_delay_seconds: Option<i64>,
    /// `periodSeconds`.
    pub period_seconds: Option<i64>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<i64>,
    /// `failureThreshold`.
    pub failure_threshold: Option<i64>,
}

/// `kubernetes.resources`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResourcesLayer {
    /// `requests`.
    pub requests: Option<QuantitiesLayer>,
    /// `limits`.
    pub limits: Option<QuantitiesLayer>,
}

/// CPU and memory quantities (`"250m"`, `"1Gi"`; `"none"` removes a default limit).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QuantitiesLayer {
    /// CPU.
    pub cpu: Option<String>,
    /// Memory.
    pub memory: Option<String>,
}

/// `kubernetes.metrics`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsLayer {
    /// Port serving metrics (default: the `http` port).
    pub port: Option<i64>,
    /// Path (default `/metrics`).
    pub path: Option<String>,
}

/// `kubernetes.autoscaling`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AutoscalingLayer {
    /// `false` turns off an autoscaler enabled by a lower layer.
    pub enabled: Option<bool>,
    /// Default: `replicas` (2).
    pub min_replicas: Option<i64>,
    /// Default 10.
    pub max_replicas: Option<i64>,
    /// Average CPU utilization target in percent of the request (default 80).
    pub cpu_utilization: Option<i64>,
}

/// `kubernetes.disruption-budget`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DisruptionBudgetLayer {
    /// `false` turns off a budget enabled by a lower layer.
    pub enabled: Option<bool>,
    /// `minAvailable`.
    pub min_available: Option<IntOrPercent>,
    /// `maxUnavailable` (default 1 when neither is set).
    pub max_unavailable: Option<IntOrPercent>,
}

/// `kubernetes.ingress`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IngressLayer {
    /// `false` turns off an Ingress enabled by a lower layer.
    pub enabled: Option<bool>,
    /// Host name (required).
    pub host: Option<String>,
    /// Path prefix (default `/`).
    pub path: Option<String>,
    /// `ingressClassName`.
    pub class_name: Option<String>,
    /// A TLS Secret for the host (by name).
    pub tls_secret: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_probe_keys_and_bad_percentages_are_rejected_by_serde() {
        let e = serde_json::from_value::<KubeLayer>(serde_json::json!({
            "probes": { "liveness": { "pth": "/healthz" } }
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `pth`"), "{e}");
        let e = serde_json::from_value::<KubeLayer>(serde_json::json!({ "max-surge": "150%" }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"150%\" is not a percentage"), "{e}");
    }
}
