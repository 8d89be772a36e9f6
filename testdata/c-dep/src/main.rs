fn main() {
    println!("2+3={}", cshim::add(2, 3));
}
