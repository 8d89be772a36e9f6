//! Auditable binaries: each image's executable carries its dependency list in
//! cargo-auditable's format, so scanners that read binaries (Trivy, Grype, Syft,
//! osv-scanner, `cargo audit bin`, `rust-audit-info`) see exactly what the SBOM's
//! `required` set says is linked.
//!
//! The format is cargo-auditable's: an ELF section `.dep-v0` holding zlib-compressed JSON
//! of `auditable_serde::VersionInfo` (packages with name, version, source, kind,
//! dependency indices and the root). cargo-auditable adds the section at link time
//! through a rustc wrapper and derives the list from `cargo metadata`; here the section is
//! added to the linked executable (a non-loaded section, so the program is unchanged) from
//! the same feature-resolved graph the SBOM is made of: no wrapper, no rebuild of the
//! workspace, and the list is the exact linked set (proc-macros and build-only crates are
//! not in it). The result is deterministic: the same binary and graph give the same bytes.
//!
//! The executable cargo wrote is left as it is; the image gets a copy with the section,
//! under `<target-dir>/containerize/cache/auditable/`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use auditable_serde::{DependencyKind, Package, Source, VersionInfo};
use sha2::{Digest, Sha256};

use crate::build::BuiltBinary;
use crate::fsutil::{self, FsError};
use crate::image::cache::stat_key;
use crate::plan::Plan;
use crate::sbom::resolve::{CrateGraph, Linked};
use crate::sbom::source::CrateSource;
use crate::sbom::{Graphs, SbomError};

/// The section cargo-auditable's readers look for.
pub const SECTION: &str = ".dep-v0";

/// The format revision: feature-resolved, proc-macros and build dependencies left out
/// (revision 1's meaning, from a more exact source than `cargo metadata`).
const FORMAT: u32 = 1;

/// The dependency list of the binary of `root` (a package id): every package it links,
/// sorted by name, version and source, the root marked.
pub fn version_info(graph: &CrateGraph, linked: &Linked, root: &str) -> VersionInfo {
    let members = linked.reachable_from(root);
    let mut ids: Vec<&String> = members
        .iter()
        .filter(|id| graph.crates.contains_key(*id))
        .collect();
    let key = |id: &String| {
        let c = &graph.crates[id];
        (c.name.clone(), c.version.clone(), source_key(&c.source))
    };
    ids.sort_by_key(|id| key(id));
    let index: BTreeMap<&String, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let packages = ids
        .iter()
        .map(|id| {
            let c = &graph.crates[*id];
            let deps: BTreeSet<usize> = linked
                .edges
                .get(*id)
                .into_iter()
                .flatten()
                .filter_map(|d| index.get(d).copied())
                .collect();
            Package {
                name: c.name.clone(),
                version: c
                    .version
                    .parse()
                    .unwrap_or_else(|_| semver::Version::new(0, 0, 0)),
                source: source(&c.source),
                kind: DependencyKind::Runtime,
                dependencies: deps.into_iter().collect(),
                root: id.as_str() == root,
            }
        })
        .collect();
    VersionInfo {
        packages,
        format: FORMAT,
    }
}

fn source_key(s: &CrateSource) -> String {
    match s {
        CrateSource::CratesIo => "crates.io".into(),
        CrateSource::Registry(url) => format!("registry {url}"),
        CrateSource::Git { url, commit } => format!("git {url}#{commit}"),
        CrateSource::Path(p) => format!("path {p}"),
    }
}

fn source(s: &CrateSource) -> Source {
    match s {
        CrateSource::CratesIo => Source::CratesIo,
        CrateSource::Registry(_) => Source::Registry,
        CrateSource::Git { .. } => Source::Git,
        CrateSource::Path(_) => Source::Local,
    }
}

/// The section's bytes: the JSON, zlib-compressed (fixed level: the bytes depend on the
/// list only).
pub fn section_bytes(info: &VersionInfo) -> Vec<u8> {
    let json = serde_json::to_vec(info).unwrap_or_default();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(7));
    let _ = z.write_all(&json);
    z.finish().unwrap_or_default()
}

/// Why a binary cannot get the section.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not a 64-bit little-endian ELF file (what x86_64 and aarch64 Linux binaries are).
    #[error("not a 64-bit little-endian ELF executable")]
    NotElf64,
    /// A section table this writer does not handle.
    #[error("unsupported section table: {0}")]
    Unsupported(&'static str),
    /// Reading or writing.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const EHDR: usize = 64;
const SHDR: usize = 64;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or_default())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// Streams `src` to `out` with a [`SECTION`] holding `data` (replacing the data of one
/// already there, as a binary built with `cargo auditable` has). Only the ELF header,
/// the section header table and the section name table are read into memory: the file
/// is copied through unchanged, and after it come the data, a new name table and a new
/// section header table, which the header then points at. No loaded segment moves, so
/// the program is byte for byte the same program.
pub fn write_with_section(
    src: &mut (impl Read + Seek),
    out: &mut impl Write,
    data: &[u8],
) -> Result<(), ElfError> {
    let len = src.seek(SeekFrom::End(0))?;
    src.seek(SeekFrom::Start(0))?;
    let mut ehdr = [0u8; EHDR];
    src.read_exact(&mut ehdr).map_err(|_| ElfError::NotElf64)?;
    if &ehdr[..4] != b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
        return Err(ElfError::NotElf64);
    }
    let shoff = u64_at(&ehdr, 0x28);
    let shentsize = usize::from(u16_at(&ehdr, 0x3a));
    let shnum = usize::from(u16_at(&ehdr, 0x3c));
    let shstrndx = usize::from(u16_at(&ehdr, 0x3e));
    if shentsize != SHDR || shnum == 0 || shnum >= 0xff00 || shstrndx >= shnum {
        return Err(ElfError::Unsupported(
            "no section headers, or an extended count",
        ));
    }
    let mut table = vec![0u8; shnum * SHDR];
    src.seek(SeekFrom::Start(shoff))?;
    src.read_exact(&mut table)?;
    let strtab_hdr = shstrndx * SHDR;
    let (str_off, str_size) = (
        u64_at(&table, strtab_hdr + 24),
        u64_at(&table, strtab_hdr + 32),
    );
    if str_size > 16 * 1024 * 1024 {
        return Err(ElfError::Unsupported("a section name table over 16 MiB"));
    }
    let mut names = vec![0u8; usize::try_from(str_size).unwrap_or(0)];
    src.seek(SeekFrom::Start(str_off))?;
    src.read_exact(&mut names)?;
    let name_at = |off: u32| -> &[u8] {
        let rest = names.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())]
    };
    let existing = (0..shnum).find(|i| name_at(u32_at(&table, i * SHDR)) == SECTION.as_bytes());

    // Layout of what is appended: data, names, headers (8-aligned).
    let pad = |at: u64| (8 - at % 8) % 8;
    let data_off = len + pad(len);
    let mut new_names = names.clone();
    let name_off = u32::try_from(new_names.len()).map_err(|_| ElfError::Unsupported("names"))?;
    if existing.is_none() {
        new_names.extend_from_slice(SECTION.as_bytes());
        new_names.push(0);
    }
    let names_off = data_off + data.len() as u64;
    let names_end = names_off + new_names.len() as u64;
    let table_off = names_end + pad(names_end);

    let mut section = [0u8; SHDR];
    section[0..4].copy_from_slice(&name_off.to_le_bytes());
    section[4..8].copy_from_slice(&1u32.to_le_bytes()); // SHT_PROGBITS; no flags: not loaded
    section[24..32].copy_from_slice(&data_off.to_le_bytes());
    section[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
    section[48..56].copy_from_slice(&1u64.to_le_bytes());
    match existing {
        Some(i) => {
            section[0..4].copy_from_slice(&table[i * SHDR..i * SHDR + 4]);
            table[i * SHDR..(i + 1) * SHDR].copy_from_slice(&section);
        }
        None => table.extend_from_slice(&section),
    }
    table[strtab_hdr + 24..strtab_hdr + 32].copy_from_slice(&names_off.to_le_bytes());
    table[strtab_hdr + 32..strtab_hdr + 40]
        .copy_from_slice(&(new_names.len() as u64).to_le_bytes());
    let new_shnum =
        u16::try_from(table.len() / SHDR).map_err(|_| ElfError::Unsupported("count"))?;
    ehdr[0x28..0x30].copy_from_slice(&table_off.to_le_bytes());
    ehdr[0x3c..0x3e].copy_from_slice(&new_shnum.to_le_bytes());

    out.write_all(&ehdr)?;
    src.seek(SeekFrom::Start(EHDR as u64))?;
    let copied = std::io::copy(&mut src.take(len - EHDR as u64), out)?;
    if copied != len - EHDR as u64 {
        return Err(ElfError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    out.write_all(&vec![0u8; pad(len) as usize])?;
    out.write_all(data)?;
    out.write_all(&new_names)?;
    out.write_all(&vec![0u8; pad(names_end) as usize])?;
    out.write_all(&table)?;
    Ok(())
}

/// Where the auditable copy of a binary goes.
fn copy_path(plan: &Plan, binary: &BuiltBinary) -> PathBuf {
    plan.cache_dir
        .join("auditable")
        .join(binary.platform.triple())
        .join(&binary.bin)
}

/// Gives every binary of an image with `auditable = true` its dependency list: returns
/// the binaries with their paths pointing at the auditable copies (the others as they
/// were).
pub fn embed_all(
    plan: &Plan,
    built: Vec<BuiltBinary>,
    graphs: &Graphs,
) -> Result<Vec<BuiltBinary>, SbomError> {
    built
        .into_iter()
        .map(|binary| {
            let wanted = plan.images.iter().any(|i| {
                i.bin == binary.bin && i.package == binary.package && i.settings.auditable
            });
            let (Some(graph), Some(linked)) = (
                graphs.by_platform.get(&binary.platform),
                graphs.linked.get(&binary.platform),
            ) else {
                return Ok(binary);
            };
            if !wanted {
                return Ok(binary);
            }
            let root =
                graph
                    .package_id(&binary.package)
                    .ok_or_else(|| SbomError::MissingPackage {
                        package: binary.package.clone(),
                        platform: binary.platform,
                    })?;
            let data = section_bytes(&version_info(graph, linked, root));
            let dest = copy_path(plan, &binary);
            embed(&binary.path, &dest, &data)?;
            Ok(BuiltBinary {
                path: dest,
                ..binary
            })
        })
        .collect()
}

/// Writes `src` with the section to `dest` (atomically, executable), unless `dest` was
/// made from this very `src` (same identity: path, size, mtime, inode) and `data`, as a
/// stamp next to it records: a no-op re-run does not read a large binary again.
fn embed(src: &Path, dest: &Path, data: &[u8]) -> Result<(), SbomError> {
    let stamp_path = dest.with_extension("stamp");
    let stamp = stat_key(src).map(|id| {
        let mut h = Sha256::new();
        h.update(id.as_bytes());
        h.update([0]);
        h.update(data);
        hex::encode(h.finalize())
    });
    let dest_id = stat_key(dest);
    if let (Some(stamp), Some(dest_id)) = (&stamp, &dest_id)
        && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == format!("{stamp}\n{dest_id}"))
    {
        return Ok(());
    }
    if let Some(dir) = dest.parent() {
        fsutil::create_dir_all(dir)?;
    }
    let failed = |reason: String| SbomError::Auditable {
        binary: src.to_path_buf(),
        reason,
    };
    let mut input = std::fs::File::open(src).map_err(|e| FsError::new("read", src, e))?;
    let tmp = tempfile::NamedTempFile::new_in(dest.parent().unwrap_or(Path::new(".")))
        .map_err(|e| FsError::new("write", dest, e))?;
    let mut w = std::io::BufWriter::new(tmp.as_file());
    write_with_section(&mut input, &mut w, data).map_err(|e| match e {
        ElfError::Io(e) => SbomError::from(FsError::new("write", dest, e)),
        other => failed(other.to_string()),
    })?;
    w.flush().map_err(|e| FsError::new("write", dest, e))?;
    drop(w);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| FsError::new("set permissions of", dest, e))?;
    tmp.persist(dest)
        .map_err(|e| FsError::new("write", dest, e.error))?;
    if let (Some(stamp), Some(dest_id)) = (stamp, stat_key(dest)) {
        fsutil::write_atomic(&stamp_path, format!("{stamp}\n{dest_id}").as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::{ElfFile64, FileHeader};
    use object::{Object, ObjectSection};

    fn sections(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let file = ElfFile64::<object::Endianness>::parse(bytes).unwrap();
        assert!(file.elf_header().is_little_endian());
        file.sections()
            .map(|s| {
                (
                    s.name().unwrap_or_default().to_string(),
                    s.data().unwrap_or_default().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn the_section_is_added_once_and_replaced_the_second_time() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let embed = |src: &[u8], data: &[u8]| {
            let mut out = Vec::new();
            write_with_section(&mut std::io::Cursor::new(src), &mut out, data).unwrap();
            out
        };
        let once = embed(&exe, b"first");
        assert_eq!(
            &once[..exe.len()][64..],
            &exe[64..],
            "the file is copied through"
        );
        let before = sections(&exe);
        let after = sections(&once);
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(
            after.last().unwrap(),
            &(SECTION.to_string(), b"first".to_vec())
        );
        // Every other section reads the same (the name table only grew by the new name).
        for (a, b) in before.iter().zip(&after) {
            if a.0 == ".shstrtab" {
                assert_eq!(&b.1[..a.1.len()], &a.1[..]);
                assert_eq!(&b.1[a.1.len()..], b".dep-v0\0");
            } else {
                assert_eq!(a, b);
            }
        }
        let twice = embed(&once, b"second");
        let again = sections(&twice);
        assert_eq!(again.len(), after.len(), "replaced, not added");
        assert_eq!(
            again
                .iter()
                .filter(|(n, _)| n == SECTION)
                .collect::<Vec<_>>(),
            [&(SECTION.to_string(), b"second".to_vec())]
        );
        assert_eq!(embed(&exe, b"first"), once, "deterministic");
        assert!(matches!(
            write_with_section(
                &mut std::io::Cursor::new(b"#!/bin/sh\n".to_vec()),
                &mut Vec::new(),
                b"x"
            ),
            Err(ElfError::NotElf64)
        ));
    }
}
