//! xz image files: `lago export -c` compresses exported images with
//! liblzma's multithreaded encoder (16 MiB blocks, as virt-builder
//! recommends, so the decoder can work in parallel too); `lago init`
//! decompresses them into the new prefix. Both log their progress (bytes
//! done of the total) at each tenth, and write to `NAME.partial` first, so a
//! failure leaves no half-written file under the final name.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use liblzma::stream::{Check, MtStreamBuilder};

/// The magic bytes every xz file starts with.
const MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];

/// Size of the blocks the encoder splits its input into.
const BLOCK_SIZE: u64 = 16 << 20;

/// xz preset: 6 is `xz`'s default.
const PRESET: u32 = 6;

/// Chunk read and written at a time (and the unit of sparse writes).
const CHUNK: usize = 1 << 20;

/// Whether `path` is an xz file (by its magic bytes, not its name).
pub fn is_xz(path: &Path) -> io::Result<bool> {
    let mut head = [0u8; 6];
    let mut file = File::open(path)?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(head == MAGIC)
}

/// Worker threads: one per core.
fn threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

fn lzma_err(e: liblzma::stream::Error) -> io::Error {
    io::Error::other(format!("xz: {e}"))
}

/// Logs `what: N% (done of total bytes)` each time another tenth is done.
struct Progress<'a> {
    what: &'a str,
    total: u64,
    done: u64,
    logged_tenths: u64,
}

impl<'a> Progress<'a> {
    fn new(what: &'a str, total: u64) -> Self {
        tracing::info!("{what}: {total} bytes");
        Progress {
            what,
            total,
            done: 0,
            logged_tenths: 0,
        }
    }

    fn add(&mut self, n: usize) {
        self.done += n as u64;
        let tenths = (self.done * 10).checked_div(self.total).unwrap_or(10);
        if tenths > self.logged_tenths && tenths < 10 {
            self.logged_tenths = tenths;
            tracing::info!(
                "{}: {}% ({} of {} bytes)",
                self.what,
                tenths * 10,
                self.done,
                self.total
            );
        }
    }
}

/// `dst` with `.partial` appended: where a file is written before it is
/// renamed to `dst`.
fn partial(dst: &Path) -> PathBuf {
    let mut name = dst.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Runs `write` into `dst.partial`, renames it to `dst` on success, removes
/// it on failure.
fn write_then_rename(dst: &Path, write: impl FnOnce(File) -> io::Result<()>) -> io::Result<()> {
    let tmp = partial(dst);
    let result = File::create(&tmp)
        .and_then(write)
        .and_then(|()| std::fs::rename(&tmp, dst));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Copies `src` to `out` in chunks, counting progress.
fn pump(src: &mut impl Read, out: &mut impl Write, progress: &mut Progress) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        progress.add(n);
    }
}

/// Compresses `src` into the xz file `dst` (multithreaded); returns the
/// compressed size. `what` names the work in progress lines.
pub fn compress(src: &Path, dst: &Path, what: &str) -> io::Result<u64> {
    let mut input = File::open(src)?;
    let mut progress = Progress::new(what, input.metadata()?.len());
    let stream = MtStreamBuilder::new()
        .threads(threads())
        .block_size(BLOCK_SIZE)
        .preset(PRESET)
        .check(Check::Crc64)
        .encoder()
        .map_err(lzma_err)?;
    write_then_rename(dst, |out| {
        let mut encoder = liblzma::write::XzEncoder::new_stream(BufWriter::new(out), stream);
        pump(&mut input, &mut encoder, &mut progress)?;
        let out = encoder.finish()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })?;
    Ok(std::fs::metadata(dst)?.len())
}

/// A writer that leaves holes where the data is zeros (images are mostly
/// unallocated), and sets the file's length at the end.
struct SparseFile {
    file: File,
    len: u64,
}

impl Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.iter().all(|&b| b == 0) {
            self.file.seek(SeekFrom::Current(buf.len() as i64))?;
        } else {
            self.file.write_all(buf)?;
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Decompresses the xz file `src` into `dst` (multithreaded, holes kept
/// sparse); returns the decompressed size. Progress counts compressed
/// bytes read (the total known in advance).
pub fn decompress(src: &Path, dst: &Path, what: &str) -> io::Result<u64> {
    let input = File::open(src)?;
    let progress = Progress::new(what, input.metadata()?.len());
    let stream = MtStreamBuilder::new()
        .threads(threads())
        .memlimit_stop(u64::MAX)
        .decoder()
        .map_err(lzma_err)?;
    let mut len = 0;
    write_then_rename(dst, |out| {
        let counted = Counted {
            inner: BufReader::with_capacity(CHUNK, input),
            progress,
        };
        let mut decoder = liblzma::read::XzDecoder::new_stream(counted, stream);
        let mut sparse = SparseFile { file: out, len: 0 };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            sparse.write_all(&buf[..n])?;
        }
        sparse.file.set_len(sparse.len)?;
        len = sparse.len;
        sparse.file.sync_all()
    })?;
    Ok(len)
}

/// A reader that reports how much of the input was consumed.
struct Counted<'a, R> {
    inner: R,
    progress: Progress<'a>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_bytes_and_holes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("image");
        // 3 MiB: data, a 1 MiB hole of zeros, data.
        let mut data = vec![0u8; 3 << 20];
        for (i, b) in data[..1 << 20].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        data[(2 << 20) + 5] = 7;
        std::fs::write(&src, &data).expect("write");
        assert!(!is_xz(&src).expect("reads"));

        let xz = dir.path().join("image.xz");
        let size = compress(&src, &xz, "test compress").expect("compresses");
        assert!(is_xz(&xz).expect("reads"));
        assert!(size < data.len() as u64 / 10, "{size}");
        assert!(!partial(&xz).exists());

        let back = dir.path().join("back");
        let len = decompress(&xz, &back, "test decompress").expect("decompresses");
        assert_eq!(len, data.len() as u64);
        assert_eq!(std::fs::read(&back).expect("read"), data);
        // The zero MiB was not written: fewer blocks than the length.
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&back).expect("meta");
        assert!(meta.blocks() * 512 < meta.len(), "{meta:?}");
    }

    #[test]
    fn damaged_input_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("image");
        std::fs::write(&src, vec![1u8; 100_000]).expect("write");
        let xz = dir.path().join("image.xz");
        compress(&src, &xz, "t").expect("compresses");
        let mut bytes = std::fs::read(&xz).expect("read");
        let mid = bytes.len() / 2;
        bytes.truncate(mid);
        std::fs::write(&xz, &bytes).expect("write");
        let back = dir.path().join("back");
        assert!(decompress(&xz, &back, "t").is_err());
        assert!(!back.exists());
        assert!(!partial(&back).exists());
    }
}
