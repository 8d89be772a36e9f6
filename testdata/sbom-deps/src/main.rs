//! Prints a few formatted numbers; uses every normal dependency so they are linked.

#[derive(serde::Serialize)]
struct Point {
    x: i32,
}

fn main() {
    let mut buf = itoa::Buffer::new();
    let n = buf.format(gitdep::answer());
    let pos = memchr::memchr(b'2', n.as_bytes());
    #[cfg(feature = "fast-hash")]
    {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(n.as_bytes());
        println!("fnv {:x}", h.finish());
    }
    #[cfg(target_arch = "aarch64")]
    {
        let mut out = [0u8; 4];
        let _ = hex::encode_to_slice(b"ab", &mut out);
        println!("hex {}", std::str::from_utf8(&out).unwrap_or(""));
    }
    let _ = Point { x: 1 }.x;
    println!("{n} {pos:?}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn random() {
        assert!(fastrand::u8(..) as u32 <= 255);
    }
}
