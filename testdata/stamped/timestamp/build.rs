use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
    });
    println!("cargo:rustc-env=TIMESTAMP_BUILT={secs}");
}
