fn main() {
    println!("cargo:rerun-if-changed=csrc/stamp.c");
    cc::Build::new().file("csrc/stamp.c").compile("stamp");
}
