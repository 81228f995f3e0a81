//! `collect`'s tar extractor fed crafted streams, as a hostile guest would
//! send them: links that point out of the output folder and entries that go
//! through them, hard links to host files, `..` and absolute names, setuid
//! modes, streams that never end. Each test checks that nothing outside the
//! destination changed (same inodes, same content, same modes, no new
//! names) and that no file in the destination shares an inode with one
//! outside.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use lago::workflows::collect::{plan, unpack, unpack_with_limits, Artifact, TarLimits};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One tar header with `name` and `link` written as raw bytes (the `tar`
/// crate's builder refuses `..` and absolute names; a guest's tar does not).
fn header(
    kind: tar::EntryType,
    name: &str,
    link: &str,
    mode: u32,
    size: u64,
) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    let gnu = h
        .as_gnu_mut()
        .ok_or_else(|| io::Error::other("gnu header"))?;
    if name.len() > gnu.name.len() || link.len() > gnu.linkname.len() {
        return Err(io::Error::other("name too long for this helper"));
    }
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    Ok(h)
}

/// Builds a stream entry by entry.
struct Stream(Vec<u8>);

impl Stream {
    fn new() -> Stream {
        Stream(Vec::new())
    }
    fn raw(&mut self, h: &tar::Header, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> io::Result<&mut Self> {
        let h = header(tar::EntryType::Regular, name, "", mode, data.len() as u64)?;
        Ok(self.raw(&h, data))
    }
    fn dir(&mut self, name: &str, mode: u32) -> io::Result<&mut Self> {
        let h = header(tar::EntryType::Directory, name, "", mode, 0)?;
        Ok(self.raw(&h, &[]))
    }
    fn symlink(&mut self, name: &str, target: &str) -> io::Result<&mut Self> {
        let h = header(tar::EntryType::Symlink, name, target, 0o777, 0)?;
        Ok(self.raw(&h, &[]))
    }
    fn hardlink(&mut self, name: &str, target: &str) -> io::Result<&mut Self> {
        let h = header(tar::EntryType::Link, name, target, 0o644, 0)?;
        Ok(self.raw(&h, &[]))
    }
    fn end(&mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        std::mem::take(&mut self.0)
    }
}

/// What a tree looks like: per path (links not followed) its inode, mode,
/// link count, size and content (files) or target (links).
/// Per path: inode, mode, link count, size, content or link target.
type Snapshot = BTreeMap<PathBuf, (u64, u32, u64, u64, Vec<u8>)>;

fn snapshot(root: &Path) -> io::Result<Snapshot> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p)?;
        let body = if m.file_type().is_symlink() {
            std::fs::read_link(&p)?
                .into_os_string()
                .into_encoded_bytes()
        } else if m.is_file() {
            std::fs::read(&p)?
        } else {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
            Vec::new()
        };
        out.insert(p, (m.ino(), m.mode(), m.nlink(), m.len(), body));
    }
    Ok(out)
}

/// Inodes of every non-folder below `root`.
fn inodes(root: &Path) -> io::Result<Vec<(PathBuf, u64, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p)?;
        if m.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        } else {
            out.push((p, m.dev(), m.ino()));
        }
    }
    Ok(out)
}

/// A temporary folder with `out/vm0` (the destination) beside `host/`, a
/// folder standing for the rest of the host (a `victim` file, a `dir`).
struct Scene {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    host: PathBuf,
    artifacts: Vec<Artifact>,
}

impl Scene {
    fn new() -> Result<Scene, Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let out = tmp.path().join("out/vm0");
        std::fs::create_dir_all(&out)?;
        let host = tmp.path().join("host");
        std::fs::create_dir(&host)?;
        std::fs::write(host.join("victim"), "host data\n")?;
        std::fs::create_dir(host.join("dir"))?;
        let artifacts = plan("vm0", &["/var/log".into()], &out)?;
        Ok(Scene {
            _tmp: tmp,
            out,
            host,
            artifacts,
        })
    }

    fn victim(&self) -> String {
        self.host.join("victim").display().to_string()
    }

    /// Unpacks `data` and checks that the host side did not change and
    /// shares no inode with the output; returns the skipped entries.
    fn attack(&self, data: &[u8]) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let before = snapshot(&self.host)?;
        let etc_passwd = std::fs::metadata("/etc/passwd")?;
        let result = unpack(data, &self.artifacts, &self.out);
        assert_eq!(snapshot(&self.host)?, before, "the host side changed");
        let after = std::fs::metadata("/etc/passwd")?;
        assert_eq!(
            (after.ino(), after.nlink(), after.mode()),
            (etc_passwd.ino(), etc_passwd.nlink(), etc_passwd.mode())
        );
        let host_inodes: Vec<(u64, u64)> = inodes(&self.host)?
            .into_iter()
            .map(|(_, d, i)| (d, i))
            .collect();
        for (p, dev, ino) in inodes(&self.out)? {
            assert!(
                !host_inodes.contains(&(dev, ino))
                    && (dev, ino) != (etc_passwd.dev(), etc_passwd.ino()),
                "{} is a host file",
                p.display()
            );
        }
        Ok(result?.skipped)
    }

    fn log(&self) -> PathBuf {
        self.out.join("_var_log")
    }
}

fn contains(skipped: &[String], what: &str) -> bool {
    skipped.iter().any(|s| s.contains(what))
}

#[test]
fn hard_link_through_a_symlink_to_root_is_refused() -> TestResult {
    let s = Scene::new()?;
    let data = Stream::new()
        .dir("var/log/./", 0o755)?
        .symlink("var/log/./root", "/")?
        .hardlink("var/log/./passwd", "var/log/./root/etc/passwd")?
        .hardlink("var/log/./victim", &format!("var/log/./root{}", s.victim()))?
        .end();
    let skipped = s.attack(&data)?;
    assert!(
        contains(
            &skipped,
            "passwd: hard link to a file this archive did not write"
        ),
        "{skipped:?}"
    );
    assert!(!s.log().join("passwd").exists());
    assert!(!s.log().join("victim").exists());
    // The link itself is kept, as a link.
    assert_eq!(std::fs::read_link(s.log().join("root"))?, Path::new("/"));
    Ok(())
}

#[test]
fn hard_links_to_absolute_or_unwritten_paths_are_refused() -> TestResult {
    let s = Scene::new()?;
    let data = Stream::new()
        .hardlink("var/log/a", "/etc/passwd")?
        .hardlink("var/log/b", &s.victim())?
        .hardlink("var/log/c", "var/log/../../etc/passwd")?
        .hardlink("var/log/d", "var/log/not-in-the-archive")?
        .end();
    let skipped = s.attack(&data)?;
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    for n in ["a", "b", "c", "d"] {
        assert!(std::fs::symlink_metadata(s.log().join(n)).is_err(), "{n}");
    }
    Ok(())
}

#[test]
fn hard_link_to_a_file_later_replaced_by_a_symlink_is_refused() -> TestResult {
    let s = Scene::new()?;
    let data = Stream::new()
        .file("var/log/f", 0o644, b"mine")?
        .symlink("var/log/f", &s.victim())?
        .hardlink("var/log/h", "var/log/f")?
        .end();
    let skipped = s.attack(&data)?;
    assert!(contains(&skipped, "h: hard link"), "{skipped:?}");
    assert_eq!(
        std::fs::read_link(s.log().join("f"))?,
        Path::new(&s.victim())
    );
    Ok(())
}

#[test]
fn hard_link_to_a_file_of_the_archive_works() -> TestResult {
    let s = Scene::new()?;
    let data = Stream::new()
        .file("var/log/./f", 0o640, b"mine")?
        .hardlink("var/log/./h", "var/log/f")?
        .end();
    let skipped = s.attack(&data)?;
    assert!(skipped.is_empty(), "{skipped:?}");
    let (f, h) = (
        std::fs::metadata(s.log().join("f"))?,
        std::fs::metadata(s.log().join("h"))?,
    );
    assert_eq!((f.ino(), f.nlink()), (h.ino(), 2));
    assert_eq!(std::fs::read(s.log().join("h"))?, b"mine");
    Ok(())
}

#[test]
fn nothing_is_written_through_a_symlink() -> TestResult {
    let s = Scene::new()?;
    let host = s.host.display().to_string();
    let data = Stream::new()
        // A link to a host folder, then a file, a folder and a deeper file
        // through it.
        .symlink("var/log/esc", &host)?
        .file("var/log/esc/new", 0o644, b"x")?
        .file("var/log/esc/victim", 0o644, b"overwritten")?
        .dir("var/log/esc/dir/sub", 0o755)?
        .file("var/log/esc/dir/f", 0o644, b"x")?
        // A link to a host file, then a file at the link's own path.
        .symlink("var/log/over", &s.victim())?
        .file("var/log/over", 0o644, b"overwritten")?
        // A relative link climbing out, then a file through it.
        .symlink("var/log/up", "../../../../host")?
        .file("var/log/up/victim", 0o644, b"overwritten")?
        // A link as the artifact folder itself, then entries below it.
        .end();
    let skipped = s.attack(&data)?;
    assert!(
        contains(&skipped, "esc/new: would pass a link"),
        "{skipped:?}"
    );
    assert!(
        contains(&skipped, "esc/dir/sub: would pass a link"),
        "{skipped:?}"
    );
    assert!(
        contains(&skipped, "up/victim: would pass a link"),
        "{skipped:?}"
    );
    // The file replaced the link (as tar does), it did not write the target.
    assert_eq!(std::fs::read(s.log().join("over"))?, b"overwritten");
    assert!(!std::fs::symlink_metadata(s.log().join("over"))?
        .file_type()
        .is_symlink());
    Ok(())
}

#[test]
fn a_symlink_as_the_artifact_folder_is_not_entered() -> TestResult {
    let s = Scene::new()?;
    let host = s.host.display().to_string();
    // `var/log` itself arrives as a link (the guest's tar was asked for
    // `var/log/.`, a hostile one sends this instead).
    let data = Stream::new()
        .symlink("var/log", &host)?
        .file("var/log/victim", 0o644, b"overwritten")?
        .hardlink("var/log/passwd", "/etc/passwd")?
        .end();
    let skipped = s.attack(&data)?;
    assert!(
        contains(&skipped, "var/log/victim: would pass a link"),
        "{skipped:?}"
    );
    Ok(())
}

#[test]
fn names_that_leave_are_skipped() -> TestResult {
    let s = Scene::new()?;
    let data = Stream::new()
        .file("var/log/../../../host/victim", 0o644, b"overwritten")?
        .file("../../host/victim", 0o644, b"overwritten")?
        .file(&s.victim(), 0o644, b"overwritten")?
        .file("/var/log/abs", 0o644, b"ok")?
        .end();
    let skipped = s.attack(&data)?;
    assert!(contains(&skipped, "leaves its folder"), "{skipped:?}");
    assert!(contains(&skipped, "not a requested path"), "{skipped:?}");
    // An absolute name inside the requested path lands inside the output.
    assert_eq!(std::fs::read(s.log().join("abs"))?, b"ok");
    Ok(())
}

#[test]
fn setuid_setgid_and_sticky_bits_are_dropped() -> TestResult {
    let s = Scene::new()?;
    let data = Stream::new()
        .dir("var/log/./", 0o1777)?
        .dir("var/log/./sgid", 0o2755)?
        .file("var/log/./suid", 0o4755, b"#!/bin/sh\n")?
        .file("var/log/./sgid/f", 0o6777, b"x")?
        .end();
    s.attack(&data)?;
    let mode = |p: PathBuf| std::fs::symlink_metadata(p).map(|m| m.mode() & 0o7777);
    assert_eq!(mode(s.log().join("suid"))?, 0o755);
    assert_eq!(mode(s.log().join("sgid/f"))?, 0o777);
    assert_eq!(mode(s.log().join("sgid"))?, 0o755);
    assert_eq!(mode(s.log())?, 0o777);
    Ok(())
}

/// A stream of entries that never ends.
struct Endless {
    block: Vec<u8>,
    pos: usize,
}

impl Read for Endless {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            let take = (out.len() - n).min(self.block.len() - self.pos);
            out[n..n + take].copy_from_slice(&self.block[self.pos..self.pos + take]);
            n += take;
            self.pos = (self.pos + take) % self.block.len();
        }
        Ok(n)
    }
}

#[test]
fn endless_streams_are_bounded() -> TestResult {
    let s = Scene::new()?;
    // Many small entries: stopped by the entry count.
    let block = Stream::new().file("etc/x", 0o644, b"x")?.0.clone();
    let limits = TarLimits {
        max_bytes: u64::MAX,
        max_entries: 1000,
    };
    let e = unpack_with_limits(Endless { block, pos: 0 }, &s.artifacts, &s.out, limits)
        .err()
        .ok_or("an endless stream of entries was accepted")?;
    assert!(e.to_string().contains("limit of 1000 entries"), "{e}");
    // One file that never ends (its size field says 8 GiB): stopped by
    // the byte count.
    let mut block = header(tar::EntryType::Regular, "var/log/big", "", 0o644, 8 << 30)?
        .as_bytes()
        .to_vec();
    block.extend(std::iter::repeat_n(b'y', 512 * 64));
    let limits = TarLimits {
        max_bytes: 1 << 20,
        max_entries: usize::MAX,
    };
    let e = unpack_with_limits(Endless { block, pos: 0 }, &s.artifacts, &s.out, limits)
        .err()
        .ok_or("an endless file was accepted")?;
    let chain = format!("{e} {e:?}");
    assert!(chain.contains("limit of 1048576 bytes"), "{chain}");
    assert_eq!(TarLimits::default().max_bytes, 32 << 30);
    Ok(())
}
