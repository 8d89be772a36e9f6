//! One workload's [`Pieces`] and its resolved NetworkPolicy settings → the
//! networking.k8s.io/v1 NetworkPolicy that admits only the ports the image declares.
//!
//! Kept apart from `render` because it is the one object whose rules come from settings
//! about other workloads (who may connect, what the pods may reach), not from the image.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pieces::Pieces;
use super::render::{meta, selector};
use crate::config::Port;
use crate::config::kube::{KubeSettings, Peer};

fn policy_peer(p: &Peer) -> NetworkPolicyPeer {
    let labels = |m: &std::collections::BTreeMap<String, String>| LabelSelector {
        match_labels: (!m.is_empty()).then(|| m.clone()),
        ..Default::default()
    };
    match &p.cidr {
        Some(cidr) => NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.clone(),
                except: None,
            }),
            ..Default::default()
        },
        None => NetworkPolicyPeer {
            pod_selector: Some(labels(&p.pods)),
            namespace_selector: p.namespaces.as_ref().map(labels),
            ..Default::default()
        },
    }
}

fn policy_port(number: i32, udp: bool) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some(if udp { "UDP" } else { "TCP" }.into()),
        ..Default::default()
    }
}

/// The NetworkPolicy of one workload: ingress only to its declared ports (none without
/// ports), from the namespace's pods, the configured peers, or (for a Service exposed
/// outside the namespace through an Ingress, NodePort or LoadBalancer) any source; egress
/// unrestricted, or with `egress = "deny"` DNS to kube-system plus `egress-allow`.
pub fn network_policy(s: &KubeSettings, p: &Pieces) -> Option<NetworkPolicy> {
    let policy = s.network_policy.as_ref()?;
    let ports: Vec<NetworkPolicyPort> = p
        .container
        .ports
        .iter()
        .flatten()
        .map(|c| policy_port(c.container_port, c.protocol.as_deref() == Some("UDP")))
        .collect();
    let exposed = s.ingress.is_some()
        || s.service
            .as_ref()
            .is_some_and(|svc| svc.type_ != "ClusterIP");
    let from = match &policy.from {
        Some(peers) => Some(peers.iter().map(policy_peer).collect()),
        // Traffic through an ingress controller or a node port arrives from outside the
        // namespace.
        None if exposed => None,
        None => Some(vec![policy_peer(&Peer::default())]),
    };
    let ingress = if ports.is_empty() {
        Vec::new()
    } else {
        vec![NetworkPolicyIngressRule {
            from,
            ports: Some(ports),
        }]
    };
    let mut types = vec!["Ingress".to_string()];
    let egress = policy.egress_allow.as_ref().map(|allow| {
        types.push("Egress".into());
        let kube_system = Peer {
            namespaces: Some(
                [(
                    "kubernetes.io/metadata.name".to_string(),
                    "kube-system".to_string(),
                )]
                .into(),
            ),
            ..Peer::default()
        };
        let dns = NetworkPolicyEgressRule {
            to: Some(vec![policy_peer(&kube_system)]),
            ports: Some(vec![policy_port(53, true), policy_port(53, false)]),
        };
        let rule = |peer: &Peer| NetworkPolicyEgressRule {
            to: Some(vec![policy_peer(peer)]),
            ports: (!peer.ports.is_empty()).then(|| {
                peer.ports
                    .iter()
                    .map(|Port { number, udp }| policy_port(i32::from(*number), *udp))
                    .collect()
            }),
        };
        std::iter::once(dns)
            .chain(allow.iter().map(rule))
            .collect::<Vec<_>>()
    });
    Some(NetworkPolicy {
        metadata: meta(p),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(p)),
            policy_types: Some(types),
            ingress: Some(ingress),
            egress,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kube::ServiceSettings;
    use crate::kube::pieces::{Workload, pieces};

    const IMAGE: &str = "registry.example/team/hello-http@sha256:0000000000000000000000000000000000000000000000000000000000000000";

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
            version: "1.0.0",
            user: "65532:65532",
            image,
            settings: s,
        }
    }

    #[test]
    fn network_policy_opens_only_declared_ports_and_deny_keeps_dns() {
        let mut s = KubeSettings::default();
        let p = pieces(&workload(&s, IMAGE)).unwrap();
        let spec = network_policy(&s, &p).unwrap().spec.unwrap();
        assert_eq!(spec.ingress, Some(vec![]), "no ports: no ingress at all");
        assert_eq!(spec.policy_types, Some(vec!["Ingress".to_string()]));
        assert!(spec.egress.is_none());
        assert!(p.topology_spread_constraints.is_some(), "2 replicas spread");

        s = settings();
        s.replicas = 1;
        s.network_policy = Some(crate::config::kube::NetworkPolicy {
            from: None,
            egress_allow: Some(vec![Peer {
                cidr: Some("10.0.0.0/8".into()),
                ports: vec![Port {
                    number: 5432,
                    udp: false,
                }],
                ..Peer::default()
            }]),
        });
        let p = pieces(&workload(&s, IMAGE)).unwrap();
        assert!(p.topology_spread_constraints.is_none(), "one replica");
        let spec = network_policy(&s, &p).unwrap().spec.unwrap();
        let rule = &spec.ingress.unwrap()[0];
        assert_eq!(
            rule.ports.as_ref().unwrap()[0].port,
            Some(IntOrString::Int(8080))
        );
        let from = rule.from.as_ref().unwrap();
        assert_eq!(from[0].pod_selector, Some(LabelSelector::default()));
        let egress = spec.egress.unwrap();
        assert_eq!(egress.len(), 2);
        let dns = &egress[0].to.as_ref().unwrap()[0];
        assert_eq!(
            dns.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "kube-system"
        );
        assert_eq!(
            egress[1].to.as_ref().unwrap()[0]
                .ip_block
                .as_ref()
                .unwrap()
                .cidr,
            "10.0.0.0/8"
        );
    }
}
