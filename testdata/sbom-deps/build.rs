fn main() {
    // A real use of the build dependency: probe the compiler.
    let ac = autocfg::new();
    if ac.probe_rustc_version(1, 70) {
        println!("cargo:rustc-cfg=modern_rustc");
    }
    println!("cargo:rustc-check-cfg=cfg(modern_rustc)");
    println!("cargo:rerun-if-changed=build.rs");
}
