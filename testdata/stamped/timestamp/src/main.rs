fn main() {
    let mut buf = itoa::Buffer::new();
    println!("built at {} (pid {})", env!("TIMESTAMP_BUILT"), buf.format(std::process::id()));
}
