fn main() {
    println!("cargo:rerun-if-changed=csrc/add.c");
    cc::Build::new().file("csrc/add.c").compile("cshim");
}
