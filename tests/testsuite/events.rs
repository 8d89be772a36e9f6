//! `--message-format json`: every line of real runs (local, pushed, failed) validates
//! against the documented schema, and the exit codes are the documented ones.

use crate::support::{self, Fixture, Registry, validate_events};

fn reasons(events: &[serde_json::Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect()
}

#[test]
fn json_stream_of_a_push_validates_against_the_schema() {
    let reg = Registry::start("none", &[]);
    let fx = Fixture::new("two-bins");
    let run = fx
        .run(&[
            "--message-format",
            "json",
            "--platform",
            "all",
            "--push",
            "--repo",
            &format!("{}/ci", reg.host()),
        ])
        .ok();
    let events = validate_events(&run.stdout);
    let r = reasons(&events);
    assert_eq!(r.first(), Some(&"plan"));
    assert_eq!(r.iter().filter(|x| **x == "image-built").count(), 3);
    assert_eq!(r.iter().filter(|x| **x == "image-pushed").count(), 3);
    assert_eq!(
        r.iter().filter(|x| **x == "sbom-written").count(),
        6,
        "one SBOM per image and platform"
    );
    assert!(r.contains(&"kube-written"), "{r:?}");
    assert_eq!(
        r.iter().filter(|x| **x == "compose-written").count(),
        1,
        "{r:?}"
    );
    assert_eq!(r.last(), Some(&"finished"));
    let pushed = events
        .iter()
        .find(|e| e["reason"] == "image-pushed")
        .unwrap();
    assert!(
        pushed["reference"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/ci/api@sha256:", reg.host()))
    );
    let built = events
        .iter()
        .find(|e| e["reason"] == "image-built")
        .unwrap();
    assert_eq!(built["platforms"].as_array().unwrap().len(), 2);
    // Human status stays on stderr.
    assert!(run.stderr.contains("Pushing"), "{}", run.stderr);
    support::eprint_stream(&run.stdout);
}

#[test]
fn failures_end_the_stream_with_finished_and_the_exit_code() {
    let fx = Fixture::new("hello-http");
    let run = fx
        .run(&["--message-format", "json", "--bin", "nope"])
        .fails_with(2);
    let events = validate_events(&run.stdout);
    assert_eq!(reasons(&events), ["finished"]);
    assert_eq!(events[0]["success"], false);
    assert_eq!(events[0]["exit_code"], 2);
    assert!(events[0]["error"].as_str().unwrap().contains("nope"));

    let run = fx
        .run(&["--message-format", "json", "--platform", "windows/amd64"])
        .fails_with(2);
    assert_eq!(reasons(&validate_events(&run.stdout)), ["finished"]);

    fx.edit("src/main.rs", |s| {
        format!("{s}\nfn broken() -> u32 {{ \"x\" }}\n")
    });
    let run = fx.run(&["--message-format", "json"]).fails_with(3);
    assert_eq!(reasons(&validate_events(&run.stdout)), ["plan", "finished"]);
}
