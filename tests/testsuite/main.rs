//! The integration tests, as one test binary (the layout cargo's own testsuite uses): one
//! module per capability, sharing `support`. Run one capability with
//! `cargo test --test testsuite push::`.

mod support;

mod audit;
mod bases;
mod c_dep;
mod checkov;
mod cli;
mod color;
mod compose;
mod config_fuzz;
mod doctor;
mod errors;
mod events;
mod git_state;
mod init;
mod jobs;
mod kube;
mod kustomize;
mod load;
mod merge;
mod network;
mod noop;
mod outputs;
mod plan;
mod provenance;
mod push;
mod release;
mod reliability;
mod reproducible;
mod resolve;
mod run;
mod safety;
mod sbom;
mod sign;
mod verify;
mod workflows;
mod workspace;
mod zstd;
