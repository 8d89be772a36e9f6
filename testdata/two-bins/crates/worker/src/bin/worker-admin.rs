fn main() {
    println!("{}", greeter_lib::greeting("worker-admin"));
}
