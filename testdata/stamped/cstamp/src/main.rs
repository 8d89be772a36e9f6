use std::ffi::{c_char, CStr};

extern "C" {
    fn cstamp_built() -> *const c_char;
}

fn main() {
    // SAFETY: the C function returns a pointer to a static NUL-terminated string.
    let built = unsafe { CStr::from_ptr(cstamp_built()) };
    let mut buf = itoa::Buffer::new();
    println!("built {} ({} bytes)", built.to_string_lossy(), buf.format(built.to_bytes().len()));
}
