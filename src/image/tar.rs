//! Sorted entries → a deterministic tar stream: uid/gid set explicitly (0 unless an entry
//! says otherwise), no user or group names, fixed modes, one mtime, parents written as
//! explicit directory entries before their children.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use tar::{EntryType, Header};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Read from disk while writing (never copied first).
    Path(PathBuf),
    /// Generated in memory (small files of the built-in base).
    Bytes(Vec<u8>),
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File(FileSource),
    /// A symbolic link to the given target.
    Symlink(String),
}

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the image, relative (`etc/passwd`), without a trailing slash.
    pub path: String,
    /// Permission bits (e.g. `0o755`, `0o1777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// The content.
    pub kind: EntryKind,
}

impl Entry {
    /// A root-owned directory.
    pub fn dir(path: &str, mode: u32) -> Self {
        Entry {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            kind: EntryKind::Dir,
        }
    }
    /// A root-owned file with in-memory content.
    pub fn bytes(path: &str, mode: u32, bytes: impl Into<Vec<u8>>) -> Self {
        Entry {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Bytes(bytes.into())),
        }
    }
    /// A root-owned file read from disk.
    pub fn file(path: &str, mode: u32, source: PathBuf) -> Self {
        Entry {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Path(source)),
        }
    }
}

/// Sorts entries by path and adds missing parent directories (0755, root).
pub fn normalize(entries: Vec<Entry>) -> Vec<Entry> {
    let mut map: BTreeMap<String, Entry> = BTreeMap::new();
    for e in entries {
        let path = e.path.trim_matches('/').to_string();
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            map.entry(p.to_string())
                .or_insert_with(|| Entry::dir(p, 0o755));
            parent = p;
        }
        map.insert(path.clone(), Entry { path, ..e });
    }
    map.into_values().collect()
}

struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Writes `entries` (normalized first) as a tar stream into `w`, ending with the
/// end-of-archive marker. Returns `w`.
pub fn write_tar<W: Write>(entries: Vec<Entry>, mtime: u64, w: W) -> io::Result<W> {
    let mut builder = tar::Builder::new(w);
    builder.mode(tar::HeaderMode::Deterministic);
    for e in normalize(entries) {
        let mut h = Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(mtime);
        h.set_username("")?;
        h.set_groupname("")?;
        match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(EntryType::Directory);
                h.set_size(0);
                builder.append_data(&mut h, format!("{}/", e.path), io::empty())?;
            }
            EntryKind::Symlink(target) => {
                h.set_entry_type(EntryType::Symlink);
                h.set_size(0);
                builder.append_link(&mut h, &e.path, target)?;
            }
            EntryKind::File(FileSource::Bytes(b)) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(b.len() as u64);
                builder.append_data(&mut h, &e.path, b.as_slice())?;
            }
            EntryKind::File(FileSource::Path(p)) => {
                let file = File::open(p).map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("failed to read `{}`: {err}", p.display()),
                    )
                })?;
                let size = file.metadata()?.len();
                h.set_entry_type(EntryType::Regular);
                h.set_size(size);
                let mut reader = Counting {
                    inner: file.take(size),
                    count: 0,
                };
                builder.append_data(&mut h, &e.path, &mut reader)?;
                if reader.count != size {
                    return Err(io::Error::other(format!(
                        "`{}` changed size while it was being packaged",
                        p.display()
                    )));
                }
            }
        }
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sparse file just over tar's 8 GiB octal size limit: written with a base-256 size
    /// (what GNU tar and Go's archive/tar read), every byte in place.
    #[test]
    fn files_over_8_gib_get_a_binary_size_field_and_all_their_bytes() {
        use std::io::{Seek, SeekFrom};
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("big.bin");
        let size: u64 = (8 << 30) + 4096;
        let mut f = File::create(&path).unwrap();
        f.set_len(size).unwrap();
        f.seek(SeekFrom::Start(size - 8)).unwrap();
        f.write_all(b"THE-END!").unwrap();
        drop(f);

        let (reader, writer) = io::pipe().unwrap();
        let entries = vec![Entry::file("big.bin", 0o644, path)];
        let producer = std::thread::spawn(move || write_tar(entries, 0, writer).map(drop));
        let mut archive = tar::Archive::new(reader);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.header().as_old().size[0], 0x80, "base-256 size field");
        assert_eq!(entry.header().entry_size().unwrap(), size);
        let (mut total, mut tail) = (0u64, Vec::new());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
            tail.extend_from_slice(&buf[..n]);
            tail.drain(..tail.len().saturating_sub(8));
        }
        assert_eq!(total, size);
        assert_eq!(tail, b"THE-END!");
        drop(entry);
        assert!(
            entries.next().is_none(),
            "the end-of-archive marker follows"
        );
        producer.join().unwrap().unwrap();
    }

    #[test]
    fn parents_are_added_and_entries_sorted_deterministically() {
        let entries = vec![
            Entry::bytes("etc/ssl/certs/ca.crt", 0o644, "x"),
            Entry::dir("tmp", 0o1777),
            Entry::bytes("etc/passwd", 0o644, "root"),
        ];
        let a = write_tar(entries.clone(), 0, Vec::new()).unwrap();
        let mut rev = entries;
        rev.reverse();
        let b = write_tar(rev, 0, Vec::new()).unwrap();
        assert_eq!(a, b);
        let mut ar = tar::Archive::new(a.as_slice());
        let got: Vec<(String, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.header().mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("etc/".into(), 0o755, 0),
                ("etc/passwd".into(), 0o644, 0),
                ("etc/ssl/".into(), 0o755, 0),
                ("etc/ssl/certs/".into(), 0o755, 0),
                ("etc/ssl/certs/ca.crt".into(), 0o644, 0),
                ("tmp/".into(), 0o1777, 0),
            ]
        );
    }

    #[test]
    fn long_paths_and_symlinks_round_trip() {
        let long = format!("app/{}/file", "d".repeat(150));
        let entries = vec![
            Entry::bytes(&long, 0o644, "x"),
            Entry {
                path: "app/link".into(),
                mode: 0o777,
                uid: 0,
                gid: 0,
                kind: EntryKind::Symlink("file".into()),
            },
        ];
        let bytes = write_tar(entries, 7, Vec::new()).unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let paths: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(paths.contains(&long));
        assert!(paths.contains(&"app/link".to_string()));
    }
}
