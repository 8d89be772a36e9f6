//! `&Path` → Ok if the ELF binary is static (no `PT_INTERP`, no `DT_NEEDED`) and built for
//! the expected machine; else an error naming the problem. Reads only the headers.

use std::fs::File;
use std::path::Path;

use object::Endianness;
use object::elf;
use object::elf::FileHeader64;
use object::read::ReadCache;
use object::read::elf::{FileHeader, ProgramHeader};

use crate::platform::Platform;

/// Why a binary cannot go into a distroless image.
#[derive(Debug, PartialEq, Eq)]
pub enum NotStatic {
    /// Not a 64-bit ELF file at all.
    NotElf(String),
    /// Built for another machine.
    WrongMachine(String),
    /// Needs a dynamic loader.
    Interpreter(String),
    /// Needs shared libraries.
    Needed(Vec<String>),
}

impl std::fmt::Display for NotStatic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotStatic::NotElf(e) => write!(f, "it is not a 64-bit ELF executable ({e})"),
            NotStatic::WrongMachine(m) => write!(f, "it is built for {m}"),
            NotStatic::Interpreter(i) => write!(f, "it needs the dynamic loader `{i}`"),
            NotStatic::Needed(libs) => {
                write!(f, "it links to shared libraries: {}", libs.join(", "))
            }
        }
    }
}

/// Checks that the file at `path` is a static executable for `platform`.
pub fn check_static(path: &Path, platform: Platform) -> Result<(), NotStatic> {
    let file = File::open(path).map_err(|e| NotStatic::NotElf(e.to_string()))?;
    let cache = ReadCache::new(file);
    // Only the file header, program headers and section headers are read: parsing the
    // whole file (`ElfFile64::parse`) would also load the symbol table, which is tens of
    // MB in a binary with debug info.
    let not_elf = |e: object::read::Error| NotStatic::NotElf(e.to_string());
    let header = FileHeader64::<Endianness>::parse(&cache).map_err(not_elf)?;
    let endian = header.endian().map_err(not_elf)?;
    let machine = header.e_machine(endian);
    let expected = match platform {
        Platform::LinuxAmd64 => elf::EM_X86_64,
        Platform::LinuxArm64 => elf::EM_AARCH64,
    };
    if machine != expected {
        let name = match machine {
            elf::EM_X86_64 => "x86_64".to_string(),
            elf::EM_AARCH64 => "aarch64".to_string(),
            other => format!("ELF machine {other:?}"),
        };
        return Err(NotStatic::WrongMachine(format!(
            "{name}, not {}",
            platform.arch()
        )));
    }
    for ph in header.program_headers(endian, &cache).map_err(not_elf)? {
        if ph.p_type(endian) == elf::PT_INTERP {
            let interp = ph
                .data(endian, &cache)
                .ok()
                .map(|d| {
                    String::from_utf8_lossy(d)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_else(|| "?".into());
            return Err(NotStatic::Interpreter(interp));
        }
    }
    let table = header
        .sections(endian, &cache)
        .and_then(|sections| sections.dynamic_table(endian, &cache))
        .map_err(not_elf)?;
    let needed: Vec<String> = table
        .iter()
        .filter(|d| d.tag == elf::DT_NEEDED)
        .map(|d| {
            table
                .string(d)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_else(|_| "?".into())
        })
        .collect();
    if needed.is_empty() {
        Ok(())
    } else {
        Err(NotStatic::Needed(needed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_runner_itself_is_dynamic_and_a_text_file_is_not_elf() {
        // Test binaries are built for the host's glibc target: dynamic.
        let me = std::env::current_exe().unwrap();
        let host = if cfg!(target_arch = "aarch64") {
            Platform::LinuxArm64
        } else {
            Platform::LinuxAmd64
        };
        match check_static(&me, host) {
            Err(NotStatic::Interpreter(i)) => assert!(i.contains("ld-"), "{i}"),
            other => panic!("expected an interpreter, got {other:?}"),
        }
        let other = if host == Platform::LinuxAmd64 {
            Platform::LinuxArm64
        } else {
            Platform::LinuxAmd64
        };
        assert!(matches!(
            check_static(&me, other),
            Err(NotStatic::WrongMachine(_))
        ));
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(matches!(
            check_static(&readme, host),
            Err(NotStatic::NotElf(_))
        ));
    }

    #[test]
    fn musl_gcc_dynamic_binary_is_refused_and_static_ones_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("hello.c");
        std::fs::write(
            &src,
            "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
        )
        .unwrap();
        let build = |out: &str, extra: &[&str]| {
            let status = std::process::Command::new("musl-gcc")
                .args(extra)
                .arg("-o")
                .arg(dir.path().join(out))
                .arg(&src)
                .status()
                .expect("musl-gcc is not installed: run scripts/install-test-deps.sh");
            assert!(status.success());
            dir.path().join(out)
        };
        let dynamic = build("dynamic", &[]);
        let err = check_static(&dynamic, Platform::LinuxAmd64).unwrap_err();
        assert_eq!(
            err,
            NotStatic::Interpreter("/lib/ld-musl-x86_64.so.1".into())
        );
        assert_eq!(
            err.to_string(),
            "it needs the dynamic loader `/lib/ld-musl-x86_64.so.1`"
        );
        let fully_static = build("static", &["-static"]);
        assert_eq!(check_static(&fully_static, Platform::LinuxAmd64), Ok(()));
        // Rust's musl binaries are static-pie (PT_DYNAMIC without DT_NEEDED): the
        // integration tests package those.
        assert!(matches!(
            check_static(&fully_static, Platform::LinuxArm64),
            Err(NotStatic::WrongMachine(_))
        ));
    }
}
