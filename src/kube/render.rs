//! [`Workload`] (one image, its reference and its
//! [`KubeSettings`](crate::config::kube::KubeSettings)) → typed k8s-openapi objects:
//! Namespace, ServiceAccount, Deployment / Job / CronJob, Service and the optional
//! HorizontalPodAutoscaler, PodDisruptionBudget and Ingress (the NetworkPolicy is
//! `network`'s).
//!
//! The objects are assembled from [`Pieces`], which are also what templates see, so the
//! built-in templates (templates/kubernetes/) and this builder give the same objects (a
//! test checks it).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Namespace, PodSpec, PodTemplateSpec, Service, ServiceAccount, ServicePort, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pieces::{HTTP_PORT_NAME, Pieces, Workload, int_or_string, labels};
use crate::config::kube::{DisruptionBudget, JobSettings, Workload as Kind};

/// Every object of one image, in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct Objects {
    /// The Namespace of `namespace` (unless `create-namespace = false`).
    pub namespace: Option<Namespace>,
    /// The pod's own ServiceAccount (no token mounted).
    pub service_account: ServiceAccount,
    /// The Deployment (`kind = "deployment"`).
    pub deployment: Option<Deployment>,
    /// The Job (`kind = "job"`).
    pub job: Option<Job>,
    /// The CronJob (`kind = "cronjob"`).
    pub cron_job: Option<CronJob>,
    /// The Service (images that serve a port).
    pub service: Option<Service>,
    /// autoscaling/v2 HorizontalPodAutoscaler.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// policy/v1 PodDisruptionBudget.
    pub disruption_budget: Option<PodDisruptionBudget>,
    /// networking.k8s.io/v1 Ingress.
    pub ingress: Option<Ingress>,
    /// networking.k8s.io/v1 NetworkPolicy.
    pub network_policy: Option<NetworkPolicy>,
    /// Further documents of the templates, of any kind.
    pub extra: Vec<serde_json::Value>,
}

pub(crate) fn meta(p: &Pieces) -> ObjectMeta {
    ObjectMeta {
        name: Some(p.name.clone()),
        namespace: p.namespace.clone(),
        labels: Some(p.labels.clone()),
        annotations: (!p.annotations.is_empty()).then(|| p.annotations.clone()),
        ..Default::default()
    }
}

pub(crate) fn selector(p: &Pieces) -> LabelSelector {
    LabelSelector {
        match_labels: Some(p.selector.clone()),
        ..Default::default()
    }
}

/// The pod template every workload kind shares.
fn pod_template(p: &Pieces) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(p.labels.clone()),
            annotations: (!p.pod_annotations.is_empty()).then(|| p.pod_annotations.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            // The app does not talk to the API server; a mounted token would only
            // be something to steal.
            automount_service_account_token: Some(false),
            service_account_name: Some(p.name.clone()),
            termination_grace_period_seconds: Some(p.termination_grace_period_seconds),
            security_context: Some(p.security_context.clone()),
            containers: vec![p.container.clone()],
            volumes: Some(p.volumes.clone()),
            topology_spread_constraints: p.topology_spread_constraints.clone(),
            ..Default::default()
        }),
    }
}

/// The Deployment.
pub fn deployment(p: &Pieces) -> Deployment {
    Deployment {
        metadata: meta(p),
        spec: Some(DeploymentSpec {
            replicas: p.replicas,
            revision_history_limit: Some(p.revision_history_limit),
            selector: selector(p),
            strategy: Some(p.strategy.clone()),
            template: pod_template(p),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Job's spec: its pod is never restarted in place (a failed run is a new pod, counted
/// against `backoffLimit`), and the finished Job is deleted after `ttlSecondsAfterFinished`.
fn job_spec(p: &Pieces, j: &JobSettings) -> JobSpec {
    let mut template = pod_template(p);
    if let Some(spec) = template.spec.as_mut() {
        spec.restart_policy = Some("Never".into());
    }
    JobSpec {
        backoff_limit: Some(j.backoff_limit),
        ttl_seconds_after_finished: Some(j.ttl_seconds_after_finished),
        template,
        ..Default::default()
    }
}

/// The Job (`kind = "job"`).
pub fn job(p: &Pieces, j: &JobSettings) -> Job {
    Job {
        metadata: meta(p),
        spec: Some(job_spec(p, j)),
        ..Default::default()
    }
}

/// The CronJob (`kind = "cronjob"`).
pub fn cron_job(p: &Pieces, schedule: &str, concurrency_policy: &str, j: &JobSettings) -> CronJob {
    CronJob {
        metadata: meta(p),
        spec: Some(CronJobSpec {
            schedule: schedule.to_string(),
            concurrency_policy: Some(concurrency_policy.to_string()),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(p.labels.clone()),
                    ..Default::default()
                }),
                spec: Some(job_spec(p, j)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ServiceAccount the pod runs as: one per workload, so RBAC granted to one image
/// never reaches another, and with no token mounted (the pod spec says so too).
pub fn service_account(p: &Pieces) -> ServiceAccount {
    ServiceAccount {
        metadata: meta(p),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// The Namespace object for `namespace`, shared by every image in it: only the labels that
/// do not name one image, and the `restricted` Pod Security Standard enforced (every pod we
/// write meets it, so a hand-added privileged pod is refused there).
pub fn namespace(name: &str) -> Namespace {
    let labels = [
        (labels::MANAGED_BY, crate::TOOL_NAME),
        (labels::POD_SECURITY_ENFORCE, "restricted"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Service, for images with a port.
pub fn service(p: &Pieces) -> Option<Service> {
    let svc = p.service.as_ref()?;
    Some(Service {
        metadata: meta(p),
        spec: Some(ServiceSpec {
            type_: Some(svc.type_.clone()),
            selector: Some(p.selector.clone()),
            ports: Some(vec![ServicePort {
                name: Some(HTTP_PORT_NAME.into()),
                port: svc.port,
                target_port: Some(IntOrString::String(HTTP_PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Every object of one image. `deployment`/`service` may come from templates instead; a
/// Job or CronJob (no Deployment) comes from the settings.
pub fn objects(
    w: &Workload,
    p: &Pieces,
    deployment: Option<Deployment>,
    service: Option<Service>,
) -> Objects {
    let s = w.settings;
    let (job, cron_job) = match &s.workload {
        Kind::Deployment => (None, None),
        Kind::Job(j) => (Some(job(p, j)), None),
        Kind::CronJob {
            schedule,
            concurrency_policy,
            job: j,
        } => (None, Some(cron_job(p, schedule, concurrency_policy, j))),
    };
    let autoscaler = s.autoscaling.as_ref().map(|a| HorizontalPodAutoscaler {
        metadata: meta(p),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: p.name.clone(),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(a.cpu_utilization),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let disruption_budget = s.disruption_budget.as_ref().map(|b| {
        let (min_available, max_unavailable) = match b {
            DisruptionBudget::MinAvailable(n) => (Some(int_or_string(n)), None),
            DisruptionBudget::MaxUnavailable(n) => (None, Some(int_or_string(n))),
        };
        PodDisruptionBudget {
            metadata: meta(p),
            spec: Some(PodDisruptionBudgetSpec {
                min_available,
                max_unavailable,
                selector: Some(selector(p)),
                ..Default::default()
            }),
            ..Default::default()
        }
    });
    let ingress = s.ingress.as_ref().map(|i| Ingress {
        metadata: meta(p),
        spec: Some(IngressSpec {
            ingress_class_name: i.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(i.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(i.path.clone()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: p.name.clone(),
                                port: Some(ServiceBackendPort {
                                    name: Some(HTTP_PORT_NAME.into()),
                                    number: None,
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            tls: i.tls_secret.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![i.host.clone()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    Objects {
        // Filled in by `kube::build_objects` from `network`.
        network_policy: None,
        namespace: s
            .namespace
            .as_deref()
            .filter(|_| s.create_namespace)
            .map(namespace),
        service_account: service_account(p),
        deployment,
        job,
        cron_job,
        extra: Vec::new(),
        service,
        autoscaler,
        disruption_budget,
        ingress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Port;
    use crate::config::kube::{KubeSettings, Metrics, ProbeSettings, ServiceSettings};
    use crate::kube::KubeError;
    use crate::kube::pieces::{object_name, pieces};

    fn settings() -> KubeSettings {
        KubeSettings {
            port: Some(8080),
            exposed_ports: vec![Port {
                number: 8080,
                udp: false,
            }],
            service: Some(ServiceSettings {
                type_: "ClusterIP".into(),
                port: 80,
            }),
            ..KubeSettings::default()
        }
    }

    fn workload<'a>(s: &'a KubeSettings, image: &'a str) -> Workload<'a> {
        Workload {
            image_name: "hello_http",
            package: "hello-http",
            version: "1.0.0+build.5",
            user: "65532:65532",
            image,
            settings: s,
        }
    }

    const IMAGE: &str = "registry.example/team/hello-http@sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn labels_selector_and_names_are_kubernetes_safe() {
        let s = settings();
        let p = pieces(&workload(&s, IMAGE)).unwrap();
        assert_eq!(p.name, "hello-http");
        assert_eq!(p.selector.len(), 2);
        assert_eq!(p.labels[labels::VERSION], "1.0.0_build.5");
        assert_eq!(p.labels[labels::COMPONENT], "server");
        assert_eq!(p.labels[labels::MANAGED_BY], "cargo-containerize");
        assert!(!p.selector.contains_key(labels::VERSION));
        let d = deployment(&p);
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some(IMAGE));
        assert_eq!(c.ports.as_ref().unwrap()[0].name.as_deref(), Some("http"));
        assert!(c.liveness_probe.is_none(), "probes only when declared");
        let svc = service(&p).unwrap().spec.unwrap();
        assert_eq!(
            svc.ports.unwrap()[0].target_port,
            Some(IntOrString::String("http".into()))
        );
    }

    #[test]
    fn probes_metrics_and_cpu_env() {
        let mut s = settings();
        s.probes.readiness = Some(ProbeSettings {
            path: Some("/readyz".into()),
            port: None,
            initial_delay_seconds: None,
            period_seconds: 10,
            timeout_seconds: 2,
            failure_threshold: 3,
        });
        s.metrics = Some(Metrics {
            port: 9090,
            path: "/metrics".into(),
        });
        s.cpu_env = Some("TOKIO_WORKER_THREADS".into());
        let p = pieces(&workload(&s, IMAGE)).unwrap();
        let c = &p.container;
        let r = c.readiness_probe.as_ref().unwrap();
        assert_eq!(
            r.http_get.as_ref().unwrap().port,
            IntOrString::String("http".into())
        );
        assert_eq!(r.period_seconds, Some(10));
        let ports: Vec<_> = c
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.name.clone().unwrap())
            .collect();
        assert_eq!(ports, ["http", "metrics"]);
        assert_eq!(p.pod_annotations["prometheus.io/port"], "9090");
        let env = &c.env.as_ref().unwrap()[0];
        let field = env
            .value_from
            .as_ref()
            .unwrap()
            .resource_field_ref
            .as_ref()
            .unwrap();
        assert_eq!(field.resource, "requests.cpu");
    }

    #[test]
    fn root_or_unknown_users_are_refused() {
        let s = settings();
        let mut w = workload(&s, IMAGE);
        w.user = "0";
        assert!(matches!(pieces(&w), Err(KubeError::RootUser { .. })));
        w.user = "www-data";
        assert!(matches!(pieces(&w), Err(KubeError::NamedUser { .. })));
        w.user = "1000";
        assert_eq!(
            pieces(&w).unwrap().security_context.run_as_group,
            Some(1000)
        );
    }

    #[test]
    fn names_that_cannot_be_objects_are_errors() {
        let s = settings();
        let mut w = workload(&s, IMAGE);
        w.image_name = "9lives";
        let e = object_name(&w).unwrap_err().to_string();
        assert!(e.contains("`9lives`"), "{e}");
    }
}
