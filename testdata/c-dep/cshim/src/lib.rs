extern "C" {
    fn cshim_add(a: i32, b: i32) -> i32;
}

/// Adds two numbers in C.
pub fn add(a: i32, b: i32) -> i32 {
    // SAFETY: a pure C function on plain integers.
    unsafe { cshim_add(a, b) }
}
