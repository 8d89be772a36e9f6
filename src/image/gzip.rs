//! Deterministic parallel gzip, the way pigz does it: the input is cut into fixed-size
//! blocks, each block is deflated on its own thread with the previous block's last 32 KiB
//! as the dictionary and ends with a sync flush (an empty stored block, so the pieces
//! concatenate on byte boundaries), and the pieces are written in order behind one gzip
//! header, followed by the combined CRC-32 and length.
//!
//! The bytes depend only on the input, the level and [`BLOCK_SIZE`], never on the number
//! of threads or on how the input was split into `write` calls, so every machine produces
//! the same layer digest. Memory stays bounded: at most `threads + 1` blocks are in flight.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Input bytes per independently compressed block. Changing it changes every layer digest.
pub const BLOCK_SIZE: usize = 1 << 20;
/// Deflate's window: the dictionary each block gets from the one before it.
const DICT_SIZE: usize = 32 * 1024;

/// One compressed block and the CRC of its input.
struct Piece {
    bytes: Vec<u8>,
    crc: Crc,
}

/// A `Write` that gzips what it is given into `inner` using up to `threads` threads.
pub struct ParGzWriter<W: Write> {
    inner: W,
    level: Compression,
    threads: usize,
    block: Vec<u8>,
    dict: Vec<u8>,
    in_flight: VecDeque<JoinHandle<io::Result<Piece>>>,
    crc: Crc,
}

impl<W: Write> ParGzWriter<W> {
    /// Starts a gzip stream (writes its header) into `inner`. `threads` is clamped to ≥ 1.
    pub fn new(mut inner: W, level: u32, threads: usize) -> io::Result<Self> {
        let level = Compression::new(level);
        inner.write_all(&header(level))?;
        Ok(ParGzWriter {
            inner,
            level,
            threads: threads.max(1),
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            in_flight: VecDeque::new(),
            crc: Crc::new(),
        })
    }

    /// Compresses the rest, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let block = std::mem::take(&mut self.block);
        let last = deflate_block(&block, &self.dict, self.level, true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        self.write_piece(last)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        Ok(self.inner)
    }

    /// Hands the full current block to a worker thread.
    fn dispatch(&mut self) -> io::Result<()> {
        while self.in_flight.len() >= self.threads {
            self.write_oldest()?;
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let dict = std::mem::replace(&mut self.dict, block[block.len() - DICT_SIZE..].to_vec());
        let level = self.level;
        let worker = std::thread::Builder::new()
            .name("gzip".into())
            .spawn(move || deflate_block(&block, &dict, level, false))?;
        self.in_flight.push_back(worker);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(worker) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let piece = worker
            .join()
            .map_err(|_| io::Error::other("a gzip worker thread panicked"))??;
        self.write_piece(piece)
    }

    fn write_piece(&mut self, piece: Piece) -> io::Result<()> {
        self.crc.combine(&piece.crc);
        self.inner.write_all(&piece.bytes)
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK_SIZE {
            self.dispatch()?;
        }
        Ok(n)
    }
    /// Blocks are cut by size only (a flush must not change the bytes), so this flushes
    /// only what is already compressed.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The 10-byte gzip header: no name, mtime 0, OS "unknown" (255), and the extra-flags byte
/// zlib and flate2 derive from the level.
fn header(level: Compression) -> [u8; 10] {
    let xfl = match level.level() {
        9.. => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// Raw-deflates `input` primed with `dict`; a non-final block ends with a sync flush.
fn deflate_block(input: &[u8], dict: &[u8], level: Compression, last: bool) -> io::Result<Piece> {
    let mut z = Compress::new(level, false);
    if !dict.is_empty() {
        z.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(input.len() / 2 + 1024);
    loop {
        let consumed = z.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let status = z
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done = z.total_in() as usize == input.len() && out.len() < out.capacity();
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError if !last && done => break,
            Status::Ok | Status::BufError => {}
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Piece { bytes: out, crc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use proptest::prelude::*;
    use std::io::Read;

    fn gzip(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), 6, threads).unwrap();
        for chunk in data.chunks(write_size.max(1)) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
    }

    /// Compressible but not trivial: a few MiB of pseudo-random words.
    fn sample(len: usize) -> Vec<u8> {
        let words: [&[u8]; 6] = [
            b"layer ",
            b"digest ",
            b"sha256 ",
            b"\0\0\0\0",
            b"tar ",
            b"\x7fELF",
        ];
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(words[(x % 6) as usize]);
            out.push((x >> 32) as u8);
        }
        out.truncate(len);
        out
    }

    #[test]
    fn round_trips_and_ignores_threads_and_write_sizes() {
        let data = sample(3 * BLOCK_SIZE + 12345);
        let reference = gzip(&data, 1, BLOCK_SIZE);
        assert_eq!(gunzip(&reference), data);
        assert_eq!(gzip(&data, 2, 8192), reference);
        assert_eq!(gzip(&data, 8, 3 * BLOCK_SIZE), reference);
        // byte-at-a-time writes, over a smaller input to keep the test fast
        let small = &data[..BLOCK_SIZE + 77];
        assert_eq!(gzip(small, 4, 1), gzip(small, 1, 4096));
        // the dictionary keeps the ratio close to one single deflate stream
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap();
        assert!(reference.len() < single.len() + single.len() / 50);
    }

    #[test]
    fn header_and_trailer_match_a_plain_gzip_stream() {
        for len in [0, 1, 100, 1000] {
            let data = sample(len);
            let ours = gzip(&data, 2, 4096);
            let mut plain = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(Vec::new(), Compression::new(6));
            plain.write_all(&data).unwrap();
            assert_eq!(ours, plain.finish().unwrap(), "len {len}");
        }
    }

    #[test]
    fn exact_block_multiples_round_trip() {
        for len in [BLOCK_SIZE, 2 * BLOCK_SIZE] {
            let data = sample(len);
            assert_eq!(gunzip(&gzip(&data, 2, 65536)), data);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn any_input_round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096), ws in 1usize..700) {
            let gz = gzip(&data, 3, ws);
            prop_assert_eq!(gunzip(&gz), data.clone());
            prop_assert_eq!(gz, gzip(&data, 1, 4096));
        }
    }
}
