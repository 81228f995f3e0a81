//! `lago collect`: each VM's artifact paths copied into
//! `OUTPUT/<vm>/<path with every / replaced by _>` (Lago's naming: `/var/log`
//! lands in `OUTPUT/vm0/_var_log`).
//!
//! From a running VM the paths come as one tar stream over SSH (`tar -C /
//! -cf - PATHS` in the VM), unpacked here with the `tar` crate, modes kept.
//! One quick command first asks which paths exist: a missing one is skipped
//! with a warning, or, with `--no-skip`, collected around and then reported
//! as an error. A VM without `tar` gets its paths over SFTP instead.
//!
//! An existing `OUTPUT` is not overwritten: it is renamed first with a
//! timestamp suffix, `OUTPUT.YYYY-MM-DD_HH:MM:SS` in local time (Lago's
//! `rotate_dir`), plus `.1`, `.2`... should that name be taken too.
//!
//! The archive comes from the VM, so it is not trusted: only entries under
//! the requested paths are written, never through a symbolic link, and
//! never outside the VM's output folder.
//!
//! A file is written in the VM folder's [`PARTIAL_DIR`] and renamed to its
//! name once complete: an interrupted collect never leaves a truncated file
//! under its final name, and the next collect into the folder removes what
//! an interrupted one left there.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::sanitize::tail_lines;
use crate::ssh::{ExecStream, SshError, SshPool, SshTarget, StreamEvent};

/// What collecting can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// An artifact path that cannot be collected (empty, `/`, or `..`
    /// alone).
    #[error("VM {vm}: artifact path {path:?} cannot be collected: {why}")]
    BadPath {
        vm: String,
        path: String,
        why: &'static str,
    },

    /// Paths missing in the VM (or patterns that matched nothing), with
    /// `--no-skip`.
    #[error("VM {vm}: artifact path{} missing (--no-skip): {}", if paths.len() == 1 { " is" } else { "s are" }, missing_list(paths))]
    Missing { vm: String, paths: Vec<String> },

    /// `tar` in the VM failed, with `--no-skip`.
    #[error("VM {vm}: tar exited with code {code} while collecting{}", if stderr.is_empty() { String::new() } else { format!(":\n{stderr}") })]
    TarFailed {
        vm: String,
        code: i32,
        stderr: String,
    },

    /// The command that checks which paths exist failed.
    #[error("VM {vm}: cannot check which artifact paths exist (exit code {code}){}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Probe {
        vm: String,
        code: i32,
        stderr: String,
    },

    /// The tar stream from the VM could not be read.
    #[error("VM {vm}: the tar stream of the artifacts is broken")]
    Archive {
        vm: String,
        #[source]
        source: io::Error,
    },

    /// A local file operation failed.
    #[error("{what} {}", path.display())]
    Local {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The SSH layer failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
}

impl CollectError {
    /// The error and its causes on one line.
    pub fn chain_string(&self) -> String {
        crate::error::render_chain(self)
    }

    /// Bad input the user can fix (a path, a missing artifact), as opposed
    /// to a failure of the connection or of the system.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            CollectError::BadPath { .. } | CollectError::Missing { .. }
        )
    }
}

impl From<CollectError> for crate::error::Error {
    fn from(e: CollectError) -> Self {
        if e.is_user_error() {
            crate::error::Error::user(e.chain_string())
        } else {
            crate::error::Error::internal(e.chain_string())
        }
    }
}

/// `paths` joined for a message, a pattern marked as one that matched
/// nothing.
fn missing_list(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| {
            if is_pattern(p) {
                format!("{p} (matched nothing)")
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn local<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CollectError + 'a {
    move |source| CollectError::Local {
        what,
        path: path.to_path_buf(),
        source,
    }
}

// ------------------------------------------------------------------ naming

/// The name an artifact gets in its VM's output folder: the path as given,
/// every `/` replaced by `_` (`/var/log/messages` → `_var_log_messages`).
pub fn artifact_name(guest_path: &str) -> String {
    guest_path.replace('/', "_")
}

/// Whether an artifact path has a `..` component: the VM resolves it (see
/// [`PROBE`]), as Lago's `scp` did.
pub fn has_parent_dir(guest_path: &str) -> bool {
    Path::new(guest_path)
        .components()
        .any(|c| c == Component::ParentDir)
}

/// Whether an artifact path is a shell pattern (`*`, `?` or `[`), expanded
/// in the VM as Lago's did (its paths went through the guest's shell).
pub fn is_pattern(guest_path: &str) -> bool {
    guest_path.contains(['*', '?', '['])
}

/// One path to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// As given (the vm-type's `artifact_paths`).
    pub guest: String,
    /// Its components, relative to `/` (`var`, `log`); `..` stays until
    /// the VM resolved the path.
    pub rel: Vec<String>,
    /// Where it lands.
    pub dest: PathBuf,
}

impl Artifact {
    /// The absolute path in the VM.
    pub fn absolute(&self) -> String {
        format!("/{}", self.rel.join("/"))
    }
    /// The path relative to `/`, as given to `tar -C /`.
    pub fn relative(&self) -> String {
        self.rel.join("/")
    }
}

/// The artifacts of one VM, landing in `vm_out`. Relative paths are taken
/// from `/`; duplicates are dropped. A path with `..` is kept for the VM to
/// resolve; it lands under its own flattened name (`/tmp/../etc/passwd` in
/// `_tmp_.._etc_passwd`), one file name in `vm_out` whatever it holds.
pub fn plan(vm: &str, paths: &[String], vm_out: &Path) -> Result<Vec<Artifact>, CollectError> {
    let mut out: Vec<Artifact> = Vec::new();
    for p in paths {
        let bad = |why| CollectError::BadPath {
            vm: vm.to_string(),
            path: p.clone(),
            why,
        };
        let mut rel = Vec::new();
        // How deep the path is, read without the VM's links: `a/..` is `/`.
        let mut depth = 0usize;
        for c in Path::new(p).components() {
            match c {
                Component::Normal(s) => {
                    rel.push(s.to_string_lossy().into_owned());
                    depth += 1;
                }
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir => {
                    rel.push("..".into());
                    depth = depth.saturating_sub(1);
                }
                Component::Prefix(_) => return Err(bad("not a path in the VM")),
            }
        }
        if depth == 0 {
            return Err(bad("it names the VM's root folder"));
        }
        let name = artifact_name(p);
        // One plain file name: never `..`, never a path.
        let mut comps = Path::new(&name).components();
        let (Some(Component::Normal(_)), None) = (comps.next(), comps.next()) else {
            return Err(bad("its name would leave the output folder"));
        };
        if name == PARTIAL_DIR {
            return Err(bad("its name is the folder of lago's unfinished files"));
        }
        if out.iter().any(|a| a.guest == *p) {
            continue;
        }
        out.push(Artifact {
            guest: p.clone(),
            rel,
            dest: vm_out.join(name),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- rotation

/// The current local time as Lago's suffix: `YYYY-MM-DD_HH:MM:SS`.
pub fn timestamp_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t = libc::time_t::try_from(secs).unwrap_or(0);
    // SAFETY: an all-zero `tm` is a valid value (integers and a null
    // pointer); `localtime_r` only reads `t` and writes `tm`, both live for
    // the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return format!("{secs}");
    }
    format!(
        "{:04}-{:02}-{:02}_{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `dir.STAMP`, beside `dir` (a trailing `/` of `dir` is ignored).
pub fn rotated_name(dir: &Path, stamp: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rotated = format!("{name}.{stamp}");
    match dir.parent() {
        Some(parent) => parent.join(rotated),
        None => PathBuf::from(rotated),
    }
}

/// Renames an existing `dir` to [`rotated_name`] with `stamp` (adding `.1`,
/// `.2`... when that is taken); returns the new name, or `None` when `dir`
/// does not exist.
pub fn rotate_dir_with(dir: &Path, stamp: &str) -> Result<Option<PathBuf>, CollectError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(None);
    }
    let base = rotated_name(dir, stamp);
    let mut candidate = base.clone();
    let mut n = 0u32;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        n += 1;
        candidate = PathBuf::from(format!("{}.{n}", base.display()));
    }
    std::fs::rename(dir, &candidate).map_err(local("cannot rotate (rename)", dir))?;
    tracing::info!("moved {} aside to {}", dir.display(), candidate.display());
    Ok(Some(candidate))
}

/// [`rotate_dir_with`] the current local time.
pub fn rotate_dir(dir: &Path) -> Result<Option<PathBuf>, CollectError> {
    rotate_dir_with(dir, &timestamp_now())
}

// ------------------------------------------------------- unfinished files

/// The folder of a VM's output folder that holds files being written;
/// each is renamed to its name once complete. Only lago writes it: an
/// artifact of this name is refused.
pub const PARTIAL_DIR: &str = ".lago-partial";

/// Removes what an interrupted collect left in `vm_out` ([`PARTIAL_DIR`]).
pub fn remove_partial(vm_out: &Path) -> Result<(), CollectError> {
    let dir = vm_out.join(PARTIAL_DIR);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(local("cannot remove", &dir)(e)),
        _ => Ok(()),
    }
}

/// [`PARTIAL_DIR`] of a VM's output folder while files are written there:
/// a leftover is removed first, the folder made on first use and removed
/// when this is dropped (with what an error left in it).
struct Partial {
    dir: PathBuf,
    made: usize,
}

impl Partial {
    fn new(vm_out: &Path) -> Result<Partial, CollectError> {
        remove_partial(vm_out)?;
        Ok(Partial {
            dir: vm_out.join(PARTIAL_DIR),
            made: 0,
        })
    }

    /// A new path for an unfinished file.
    fn next(&mut self) -> io::Result<PathBuf> {
        if self.made == 0 {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&self.dir)?;
        }
        self.made += 1;
        Ok(self.dir.join(self.made.to_string()))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if self.made > 0 {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// --------------------------------------------------------------- unpacking

/// Bounds on one VM's tar stream (a guest can send one that never ends);
/// past either, unpacking fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarLimits {
    /// The most bytes of the stream read.
    pub max_bytes: u64,
    /// The most entries (of any kind, skipped ones included).
    pub max_entries: usize,
}

impl Default for TarLimits {
    /// 32 GiB and 1,000,000 entries.
    fn default() -> Self {
        TarLimits {
            max_bytes: 32 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// What unpacking did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Entries written (files, folders, links).
    pub entries: usize,
    /// Entries left out, with the reason.
    pub skipped: Vec<String>,
}

/// An entry path's components, or `None` when it tries to leave (`..`).
fn entry_components(path: &Path) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Where an archive path lands: once per artifact it falls under.
fn destinations(artifacts: &[Artifact], comps: &[String]) -> Vec<PathBuf> {
    artifacts
        .iter()
        .filter(|a| comps.starts_with(&a.rel))
        .map(|a| {
            let mut d = a.dest.clone();
            d.extend(&comps[a.rel.len()..]);
            d
        })
        .collect()
}

/// Creates `dir` and its missing parents below `root`, refusing to pass
/// through a symbolic link or a file. `Ok(false)`: refused. Only the
/// extractor writes below `root`, so what `lstat` saw stays true.
fn make_dirs(root: &Path, dir: &Path) -> Result<bool, CollectError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(false);
    };
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir(&cur).map_err(local("cannot create", &cur))?;
            }
            Err(e) => return Err(local("cannot inspect", &cur)(e)),
        }
    }
    Ok(true)
}

/// Removes whatever non-folder is at `path` (a link or file from an earlier
/// entry), so that nothing is written through it.
fn clear(path: &Path) -> Result<(), CollectError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(path).map_err(local("cannot replace", path)),
        _ => Ok(()),
    }
}

/// A new file at `path`, owner-only until its content is in: never an
/// existing file, never through a symbolic link (`O_EXCL`, `O_NOFOLLOW`).
fn create_new(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// A copy of the file this extractor wrote at `from` as a new file `to`.
fn copy_new(from: &Path, to: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut src = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)?;
    let mut dst = create_new(to)?;
    io::copy(&mut src, &mut dst)?;
    dst.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
}

/// A file this archive wrote: where, and which inode (so that a hard link
/// to it is made only while that path still is that very file).
struct Written {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// `reader`, failing once more than `limit` bytes were read from it.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "the tar stream is longer than lago's limit of {} bytes",
                self.limit
            ))
        })?;
        Ok(n)
    }
}

/// Unpacks a tar stream of the VM's paths (relative to `/`) into the
/// artifacts' destinations, all below `root`. File modes are kept (the
/// `rwx` bits only: never setuid, setgid or sticky), folder modes applied
/// once their content is in.
///
/// The stream comes from the guest: entries that leave their folder (`..`,
/// absolute paths after `/` is dropped) or fall outside the requested
/// paths are skipped; symbolic links are written as links and never
/// followed (an entry below a link is skipped, files are created with
/// `O_EXCL|O_NOFOLLOW`); a hard link is made only to a file this same
/// archive wrote earlier, looked up by its archive path, never through the
/// file system. A stream past [`TarLimits::default`] is an error.
pub fn unpack<R: Read>(
    reader: R,
    artifacts: &[Artifact],
    root: &Path,
) -> Result<Unpacked, io::Error> {
    unpack_with_limits(reader, artifacts, root, TarLimits::default())
}

/// [`unpack`] with other bounds than the default ones.
pub fn unpack_with_limits<R: Read>(
    reader: R,
    artifacts: &[Artifact],
    root: &Path,
    limits: TarLimits,
) -> Result<Unpacked, io::Error> {
    let mut archive = tar::Archive::new(Limited {
        inner: reader,
        left: limits.max_bytes,
        limit: limits.max_bytes,
    });
    let mut report = Unpacked::default();
    let mut partial = Partial::new(root).map_err(|e| io::Error::other(e.to_string()))?;
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut files: std::collections::HashMap<Vec<String>, Written> = Default::default();
    let to_io = |e: CollectError| io::Error::other(e.to_string());
    for (n, entry) in archive.entries()?.enumerate() {
        if n >= limits.max_entries {
            return Err(io::Error::other(format!(
                "the tar stream has more than lago's limit of {} entries",
                limits.max_entries
            )));
        }
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Some(comps) = entry_components(&path) else {
            report
                .skipped
                .push(format!("{}: leaves its folder", path.display()));
            continue;
        };
        let dests = destinations(artifacts, &comps);
        if dests.is_empty() {
            report
                .skipped
                .push(format!("{}: not a requested path", path.display()));
            continue;
        }
        let kind = entry.header().entry_type();
        // A path asked for twice (two artifacts resolving to one path):
        // tar sends it again as a hard link to itself; it is already in.
        if kind.is_hard_link()
            && entry
                .link_name()?
                .and_then(|l| entry_components(&l))
                .as_ref()
                == Some(&comps)
            && files.contains_key(&comps)
        {
            continue;
        }
        // Whatever this entry is, the file of an earlier one at its path is
        // gone (or stays only as the source of a copy below).
        files.remove(&comps);
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let mtime = entry.header().mtime().unwrap_or(0);
        let mut first: Option<PathBuf> = None;
        for dest in dests {
            let parent = dest.parent().unwrap_or(root);
            if kind.is_dir() {
                if !make_dirs(root, &dest).map_err(to_io)? {
                    report
                        .skipped
                        .push(format!("{}: would pass a link", path.display()));
                    continue;
                }
                dir_modes.push((dest, mode));
                report.entries += 1;
                continue;
            }
            if !make_dirs(root, parent).map_err(to_io)? {
                report
                    .skipped
                    .push(format!("{}: would pass a link", path.display()));
                continue;
            }
            if std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
                report
                    .skipped
                    .push(format!("{}: a folder is in the way", path.display()));
                continue;
            }
            clear(&dest).map_err(to_io)?;
            if kind.is_symlink() {
                let Some(target) = entry.link_name()? else {
                    report
                        .skipped
                        .push(format!("{}: link without a target", path.display()));
                    continue;
                };
                std::os::unix::fs::symlink(&target, &dest)?;
            } else if kind.is_hard_link() {
                let source = entry
                    .link_name()?
                    .and_then(|l| entry_components(&l))
                    .and_then(|c| files.get(&c))
                    .filter(|w| {
                        std::fs::symlink_metadata(&w.path).is_ok_and(|m| {
                            use std::os::unix::fs::MetadataExt;
                            m.is_file() && m.dev() == w.dev && m.ino() == w.ino
                        })
                    });
                let Some(source) = source else {
                    report.skipped.push(format!(
                        "{}: hard link to a file this archive did not write",
                        path.display()
                    ));
                    continue;
                };
                // `link(2)` does not follow a link at either path.
                if std::fs::hard_link(&source.path, &dest).is_err() {
                    copy_new(&source.path, &dest, mode)?;
                }
            } else if kind.is_file() || kind.is_contiguous() {
                match &first {
                    None => {
                        let unfinished = partial.next()?;
                        let mut file = create_new(&unfinished)?;
                        let size = entry.size();
                        if io::copy(&mut entry, &mut file)? != size {
                            return Err(io::Error::other(format!(
                                "{}: the stream ended inside the file",
                                path.display()
                            )));
                        }
                        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
                        file.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(mtime))?;
                        // Complete: under its name (`rename(2)` replaces no
                        // link's target; `dest` was cleared above).
                        std::fs::rename(&unfinished, &dest)?;
                        let meta = file.metadata()?;
                        use std::os::unix::fs::MetadataExt;
                        files.insert(
                            comps.clone(),
                            Written {
                                path: dest.clone(),
                                dev: meta.dev(),
                                ino: meta.ino(),
                            },
                        );
                        first = Some(dest);
                    }
                    Some(first) => copy_new(first, &dest, mode)?,
                }
            } else {
                report
                    .skipped
                    .push(format!("{}: not a file, folder or link", path.display()));
                continue;
            }
            report.entries += 1;
        }
    }
    // Deepest first, so a read-only folder is closed after its content.
    dir_modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (dir, mode) in dir_modes {
        // Only folders this extractor made (a later entry cannot replace a
        // folder, but a link is never chmodded through).
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(report)
}

// ------------------------------------------------------------- the stream

/// An [`ExecStream`]'s stdout as a [`Read`], keeping its stderr (the last
/// 64 KiB), its exit code and the SSH error that ended it, if any.
struct StreamReader {
    stream: ExecStream,
    buf: Vec<u8>,
    pos: usize,
    stderr: Vec<u8>,
    exit: Option<i32>,
    error: Option<SshError>,
    ended: bool,
}

const STDERR_KEEP: usize = 64 * 1024;

impl StreamReader {
    fn new(stream: ExecStream) -> Self {
        StreamReader {
            stream,
            buf: Vec::new(),
            pos: 0,
            stderr: Vec::new(),
            exit: None,
            error: None,
            ended: false,
        }
    }

    /// Reads what is left, for the exit code.
    fn finish(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.stream.next() {
                Some(Ok(StreamEvent::Stdout(data))) => {
                    self.buf = data;
                    self.pos = 0;
                }
                Some(Ok(StreamEvent::Stderr(data))) => {
                    self.stderr.extend_from_slice(&data);
                    if self.stderr.len() > STDERR_KEEP {
                        let cut = self.stderr.len() - STDERR_KEEP;
                        self.stderr.drain(..cut);
                    }
                }
                Some(Ok(StreamEvent::Exit(code))) => {
                    self.exit = Some(code);
                    self.ended = true;
                }
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.ended = true;
                    return Err(io::Error::other("the SSH stream failed"));
                }
                None => self.ended = true,
            }
        }
    }
}

// ----------------------------------------------------------- one VM, live

/// What was collected from one VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VmCollection {
    /// Paths collected (as given), each into its destination.
    pub collected: Vec<String>,
    /// Paths missing in the VM (skipped).
    pub missing: Vec<String>,
    /// Everything else worth knowing (tar's complaints, entries left out).
    pub warnings: Vec<String>,
}

/// What a path is in the VM: `d` a folder (links followed), `l` a link to
/// a non-folder, `f` anything else that exists, `m` missing.
type Kind = char;

/// What the VM said about one artifact path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probed {
    /// A plain path, and what it is.
    Path(Kind),
    /// A pattern: the paths it matched in the VM (none: it matched nothing).
    Matches(Vec<(Kind, String)>),
    /// A path with `..`, as the VM resolved it, and what it is.
    Resolved(Kind, String),
}

/// Asks the VM, in one command, what each path is (see [`Kind`]) and
/// expands the patterns ([`is_pattern`]) with the VM's own shell, as Lago's
/// did. The paths are arguments of a fixed script, never part of it;
/// `IFS=` leaves only pathname expansion to an unquoted pattern. Records
/// end with NUL (a guest's file name may hold newlines): `I K` for a plain
/// path, `I g K PATH` per match of a pattern, `I n` for a pattern that
/// matched nothing, `I r K PATH` for a path with `..` that the VM resolved
/// (its folder with `cd -P`, the last name kept: a link is collected as a
/// link), `I m` when it cannot.
const PROBE: &str = "kind() { if [ -d \"$1\" ]; then t=d; \
    elif [ -L \"$1\" ] && [ -e \"$1\" ]; then t=l; \
    elif [ -e \"$1\" ] || [ -L \"$1\" ]; then t=f; \
    else t=m; fi; }; \
    i=0; IFS=; for p do \
    case \"$p\" in \
    *'*'* | *'?'* | *'['*) n=0; \
      for m in $p; do kind \"$m\"; [ $t = m ] && continue; \
        printf '%s g %s %s\\000' \"$i\" \"$t\" \"$m\"; n=1; done; \
      [ $n = 1 ] || printf '%s n\\000' \"$i\" ;; \
    */.. | */../*) r=; case \"$p\" in \
      */..) r=$(cd -P -- \"$p\" 2>/dev/null && pwd -P) ;; \
      *) d=$(cd -P -- \"${p%/*}/\" 2>/dev/null && pwd -P) && r=\"${d%/}/${p##*/}\" ;; \
      esac; t=m; [ -n \"$r\" ] && kind \"$r\"; \
      if [ $t = m ]; then printf '%s m\\000' \"$i\"; \
      else printf '%s r %s %s\\000' \"$i\" \"$t\" \"$r\"; fi ;; \
    *) kind \"$p\"; printf '%s %s\\000' \"$i\" \"$t\" ;; \
    esac; i=$((i+1)); done";

fn probe(
    pool: &SshPool,
    target: &SshTarget,
    artifacts: &[Artifact],
) -> Result<Vec<Probed>, CollectError> {
    let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), PROBE.into(), "sh".into()];
    argv.extend(artifacts.iter().map(Artifact::absolute));
    let status = pool.exec(target, &argv, None, None)?;
    let probe_err = |status: &crate::ssh::CommandStatus| CollectError::Probe {
        vm: target.name.clone(),
        code: status.code,
        stderr: status.err_str().trim().to_string(),
    };
    if status.code != 0 {
        return Err(probe_err(&status));
    }
    parse_probe(&status.out, artifacts).ok_or_else(|| probe_err(&status))
}

/// The records of [`PROBE`]'s output, one [`Probed`] per artifact; `None`
/// when an artifact got no answer. Records that do not parse are ignored
/// (the guest wrote them).
fn parse_probe(out: &[u8], artifacts: &[Artifact]) -> Option<Vec<Probed>> {
    let mut probed: Vec<Option<Probed>> = vec![None; artifacts.len()];
    for record in out.split(|b| *b == 0) {
        let record = String::from_utf8_lossy(record);
        let mut parts = record.splitn(4, ' ');
        let (Some(i), Some(k)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((slot, a)) = i
            .parse::<usize>()
            .ok()
            .and_then(|i| probed.get_mut(i).zip(artifacts.get(i)))
        else {
            continue;
        };
        match (k, is_pattern(&a.guest)) {
            ("r", false) if has_parent_dir(&a.guest) => {
                let (Some(kind), Some(path)) = (parts.next(), parts.next()) else {
                    continue;
                };
                if let Some(kind @ ('d' | 'l' | 'f')) = kind.chars().next() {
                    *slot = Some(Probed::Resolved(kind, path.to_string()));
                }
            }
            ("n", true) => *slot = Some(Probed::Matches(Vec::new())),
            ("g", true) => {
                let (Some(kind), Some(path)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let Some(kind @ ('d' | 'l' | 'f')) = kind.chars().next() else {
                    continue;
                };
                let found = (kind, path.to_string());
                match slot {
                    Some(Probed::Matches(m)) => m.push(found),
                    _ => *slot = Some(Probed::Matches(vec![found])),
                }
            }
            (k, false) => {
                if let Some(kind @ ('d' | 'l' | 'f' | 'm')) = k.chars().next() {
                    *slot = Some(Probed::Path(kind));
                }
            }
            _ => {}
        }
    }
    probed.into_iter().collect()
}

/// The artifacts to copy with their kinds, each pattern replaced by the
/// paths it matched (each landing under its own name, as a path given
/// alone would), and the paths missing or patterns that matched nothing.
/// A match that cannot be collected (the guest named it) is left out with a
/// warning.
fn expand(
    vm: &str,
    artifacts: &[Artifact],
    probed: Vec<Probed>,
    vm_out: &Path,
    report: &mut VmCollection,
) -> Vec<(Artifact, Kind)> {
    let mut out: Vec<(Artifact, Kind)> = Vec::new();
    for (a, p) in artifacts.iter().zip(probed) {
        match p {
            Probed::Path('m') => report.missing.push(a.guest.clone()),
            // Unresolved `..` (a guest's forged answer): never copied.
            Probed::Path(_) if has_parent_dir(&a.guest) => report.missing.push(a.guest.clone()),
            Probed::Path(k) => out.push((a.clone(), k)),
            Probed::Resolved(k, path) => match plan(vm, std::slice::from_ref(&path), vm_out) {
                Ok(mut one) if !has_parent_dir(&path) => {
                    if let Some(found) = one.pop() {
                        // Under the name given, as Lago's `scp` wrote it.
                        out.push((
                            Artifact {
                                guest: a.guest.clone(),
                                rel: found.rel,
                                dest: a.dest.clone(),
                            },
                            k,
                        ));
                    }
                }
                _ => {
                    let w = format!("{} resolved to {path:?} in the VM; left out", a.guest);
                    tracing::warn!("VM {vm}: {w}");
                    report.warnings.push(w);
                }
            },
            Probed::Matches(m) if m.is_empty() => report.missing.push(a.guest.clone()),
            Probed::Matches(matches) => {
                for (k, path) in matches {
                    let planned = if has_parent_dir(&path) {
                        Err(CollectError::BadPath {
                            vm: vm.to_string(),
                            path: path.clone(),
                            why: "it contains `..`",
                        })
                    } else {
                        plan(vm, std::slice::from_ref(&path), vm_out)
                    };
                    match planned {
                        Ok(mut one) => {
                            if let Some(found) = one.pop() {
                                out.push((found, k));
                            }
                        }
                        Err(e) => {
                            let w = format!("{} matched {e}; left out", a.guest);
                            tracing::warn!("VM {vm}: {w}");
                            report.warnings.push(w);
                        }
                    }
                }
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(a, _)| seen.insert(a.guest.clone()));
    out
}

/// Collects `paths` from the running VM into `vm_out` (created when
/// missing). Missing paths are skipped with a warning; with `no_skip` the
/// others are still collected, then [`CollectError::Missing`] is returned,
/// and a failing `tar` is an error rather than a warning.
pub fn collect_vm(
    pool: &SshPool,
    target: &SshTarget,
    paths: &[String],
    vm_out: &Path,
    no_skip: bool,
) -> Result<VmCollection, CollectError> {
    let vm = target.name.as_str();
    let artifacts = plan(vm, paths, vm_out)?;
    std::fs::create_dir_all(vm_out).map_err(local("cannot create", vm_out))?;
    let mut report = VmCollection::default();
    if artifacts.is_empty() {
        return Ok(report);
    }
    let probed = probe(pool, target, &artifacts)?;
    let found = expand(vm, &artifacts, probed, vm_out, &mut report);
    for missing in &report.missing {
        let what = if is_pattern(missing) {
            "matched nothing"
        } else {
            "does not exist"
        };
        if no_skip {
            tracing::debug!("VM {vm}: {missing} {what}");
        } else {
            tracing::warn!("VM {vm}: {missing} {what}; skipped");
        }
    }
    let mut by_tar: Vec<(&Artifact, char)> = Vec::new();
    let mut by_sftp: Vec<&Artifact> = Vec::new();
    for (a, k) in &found {
        match k {
            'l' => by_sftp.push(a),
            k => by_tar.push((a, *k)),
        }
    }
    if !by_tar.is_empty() {
        let tarred: Vec<Artifact> = by_tar.iter().map(|(a, _)| (*a).clone()).collect();
        let mut argv: Vec<String> = ["tar", "-C", "/", "-cf", "-", "--"]
            .map(String::from)
            .to_vec();
        // A folder as `dir/.`: taken through a link, if it is one. A path
        // two artifacts resolve to is asked for once (each gets a copy).
        let mut asked = std::collections::HashSet::new();
        argv.extend(
            by_tar
                .iter()
                .map(|(a, k)| match k {
                    'd' => format!("{}/.", a.relative()),
                    _ => a.relative(),
                })
                .filter(|p| asked.insert(p.clone())),
        );
        let mut reader = StreamReader::new(pool.exec_stream(target, &argv, None, None));
        let unpacked = unpack(&mut reader, &tarred, vm_out);
        let finished = reader.finish();
        if let Some(e) = reader.error.take() {
            return Err(CollectError::Ssh(e));
        }
        let unpacked = unpacked.map_err(|source| CollectError::Archive {
            vm: vm.to_string(),
            source,
        })?;
        finished.map_err(|source| CollectError::Archive {
            vm: vm.to_string(),
            source,
        })?;
        for s in &unpacked.skipped {
            tracing::warn!("VM {vm}: left out of the artifacts: {s}");
            report.warnings.push(s.clone());
        }
        let code = reader.exit.unwrap_or(-1);
        let stderr = tail_lines(&reader.stderr, 10, "  ");
        if code == 127 && unpacked.entries == 0 {
            tracing::info!("VM {vm}: no tar in the VM; collecting over SFTP");
            by_sftp.extend(by_tar.iter().map(|(a, _)| *a));
        } else {
            if code != 0 {
                if no_skip {
                    return Err(CollectError::TarFailed {
                        vm: vm.to_string(),
                        code,
                        stderr,
                    });
                }
                let w = format!("tar exited with code {code}: {}", stderr.trim());
                tracing::warn!("VM {vm}: {w}");
                report.warnings.push(w);
            }
            report
                .collected
                .extend(by_tar.iter().map(|(a, _)| a.guest.clone()));
        }
    }
    let mut partial = Partial::new(vm_out)?;
    for a in by_sftp {
        let unfinished = partial.next().map_err(local("cannot create", vm_out))?;
        pool.download(target, &a.absolute(), &unfinished)?;
        std::fs::rename(&unfinished, &a.dest).map_err(local("cannot rename", &unfinished))?;
        report.collected.push(a.guest.clone());
    }
    drop(partial);
    // Keep the order the paths were given (and matched) in.
    report
        .collected
        .sort_by_key(|g| found.iter().position(|(a, _)| a.guest == *g));
    if no_skip && !report.missing.is_empty() {
        return Err(CollectError::Missing {
            vm: vm.to_string(),
            paths: report.missing,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mode(p: &Path) -> io::Result<u32> {
        Ok(std::fs::symlink_metadata(p)?.permissions().mode() & 0o7777)
    }

    #[test]
    fn names_replace_every_slash() {
        assert_eq!(artifact_name("/var/log"), "_var_log");
        assert_eq!(artifact_name("/var/log/messages"), "_var_log_messages");
        assert_eq!(artifact_name("/tmp/dir/"), "_tmp_dir_");
        assert_eq!(artifact_name("etc/hosts"), "etc_hosts");
    }

    #[test]
    fn plan_normalises_and_refuses_escapes() -> TestResult {
        let out = Path::new("/out/vm0");
        let plan = plan(
            "vm0",
            &[
                "/var/log".into(),
                "/var//log/./x/".into(),
                "/var/log".into(),
            ],
            out,
        )?;
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].rel, ["var", "log"]);
        assert_eq!(plan[0].dest, out.join("_var_log"));
        assert_eq!(plan[0].absolute(), "/var/log");
        assert_eq!(plan[1].rel, ["var", "log", "x"]);
        assert_eq!(plan[1].dest, out.join("_var__log_._x_"));
        // `..` is the VM's to resolve; the name stays one file name.
        let up = super::plan("vm0", &["/tmp/../etc/passwd".into(), "../x".into()], out)?;
        assert_eq!(up[0].dest, out.join("_tmp_.._etc_passwd"));
        assert_eq!(up[0].absolute(), "/tmp/../etc/passwd");
        assert_eq!(up[1].dest, out.join(".._x"));
        for bad in ["/", "", "..", "./..", "a/.."] {
            let e = super::plan("vm0", &[bad.to_string()], out)
                .err()
                .ok_or("refused")?;
            assert!(matches!(e, CollectError::BadPath { .. }), "{bad}: {e}");
        }
        Ok(())
    }

    #[test]
    fn rotation_names_and_collisions() -> TestResult {
        assert_eq!(
            rotated_name(Path::new("/a/out/"), "2024-01-02_03:04:05"),
            Path::new("/a/out.2024-01-02_03:04:05")
        );
        assert_eq!(rotated_name(Path::new("out"), "S"), Path::new("out.S"));
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("out");
        assert_eq!(rotate_dir_with(&out, "S")?, None);
        std::fs::create_dir(&out)?;
        std::fs::write(out.join("f"), "1")?;
        assert_eq!(rotate_dir_with(&out, "S")?, Some(dir.path().join("out.S")));
        std::fs::create_dir(&out)?;
        assert_eq!(
            rotate_dir_with(&out, "S")?,
            Some(dir.path().join("out.S.1"))
        );
        assert!(!out.exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("out.S/f"))?, "1");
        Ok(())
    }

    #[test]
    fn timestamp_has_lagos_shape() {
        let s = timestamp_now();
        let b = s.as_bytes();
        assert_eq!(b.len(), 19, "{s}");
        assert_eq!(
            (b[4], b[7], b[10], b[13], b[16]),
            (b'-', b'-', b'_', b':', b':'),
            "{s}"
        );
        assert!(s.chars().filter(char::is_ascii_digit).count() == 14, "{s}");
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h
    }

    /// An in-memory tar of a small tree, as `tar -C / -cf - var/log/. etc/hostname` makes it.
    fn sample_tar(outside: &Path) -> io::Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        let add_dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, m| {
            let mut h = header(tar::EntryType::Directory, m, 0);
            b.append_data(&mut h, p, io::empty())
        };
        add_dir(&mut b, "var/log/./", 0o755)?;
        add_dir(&mut b, "var/log/./private/", 0o700)?;
        add_dir(&mut b, "var/log/./ro/", 0o555)?;
        let add_file = |b: &mut tar::Builder<Vec<u8>>, p: &str, m, data: &[u8]| {
            let mut h = header(tar::EntryType::Regular, m, data.len() as u64);
            b.append_data(&mut h, p, data)
        };
        add_file(&mut b, "var/log/./messages", 0o640, b"hello\n")?;
        add_file(&mut b, "var/log/./private/key", 0o600, b"k")?;
        add_file(&mut b, "var/log/./ro/inside", 0o444, b"r")?;
        add_file(&mut b, "var/log/./run.sh", 0o755, b"#!/bin/sh\n")?;
        add_file(&mut b, "etc/hostname", 0o644, b"vm0\n")?;
        // Not asked for, and hostile.
        add_file(&mut b, "etc/shadow", 0o600, b"x")?;
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        h.as_gnu_mut()
            .ok_or_else(|| io::Error::other("gnu header"))?
            .name[..22]
            .copy_from_slice(b"var/log/../../evil.txt");
        h.set_cksum();
        b.append(&h, &b"e"[..])?;
        // A link that points away, then a file through it.
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, "var/log/./escape", outside)?;
        add_file(&mut b, "var/log/./escape/owned", 0o644, b"o")?;
        let mut h = header(tar::EntryType::Link, 0o640, 0);
        b.append_link(&mut h, "var/log/./messages.hard", "var/log/./messages")?;
        b.into_inner()
    }

    #[test]
    fn unpack_writes_only_requested_paths_with_modes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("vm0");
        std::fs::create_dir(&root)?;
        let artifacts = plan("vm0", &["/var/log".into(), "/etc/hostname".into()], &root)?;
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside)?;
        let data = sample_tar(&outside)?;
        let report = unpack(&data[..], &artifacts, &root)?;
        let log = root.join("_var_log");
        assert_eq!(std::fs::read_to_string(log.join("messages"))?, "hello\n");
        assert_eq!(mode(&log.join("messages"))?, 0o640);
        assert_eq!(mode(&log.join("run.sh"))?, 0o755);
        assert_eq!(mode(&log.join("private"))?, 0o700);
        assert_eq!(mode(&log.join("private/key"))?, 0o600);
        assert_eq!(mode(&log.join("ro"))?, 0o555);
        assert_eq!(std::fs::read_to_string(log.join("ro/inside"))?, "r");
        assert_eq!(mode(&log)?, 0o755);
        assert_eq!(
            std::fs::read_to_string(root.join("_etc_hostname"))?,
            "vm0\n"
        );
        assert_eq!(
            std::fs::read_to_string(log.join("messages.hard"))?,
            "hello\n"
        );
        // The link is kept as a link; nothing was written through it.
        assert!(std::fs::symlink_metadata(log.join("escape"))?
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_dir(&outside)?.count(), 0);
        assert!(!dir.path().join("evil.txt").exists());
        assert!(!root.join("_etc_shadow").exists());
        let skipped = report.skipped.join("\n");
        assert!(
            skipped.contains("etc/shadow: not a requested path"),
            "{skipped}"
        );
        assert!(
            skipped.contains("escape/owned: would pass a link"),
            "{skipped}"
        );
        assert!(skipped.contains("evil.txt: leaves its folder"), "{skipped}");
        Ok(())
    }

    #[test]
    fn overlapping_artifacts_each_get_a_copy() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().to_path_buf();
        let artifacts = plan(
            "vm0",
            &["/var/log".into(), "/var/log/messages".into()],
            &root,
        )?;
        let data = sample_tar(Path::new("/nonexistent"))?;
        unpack(&data[..], &artifacts, &root)?;
        assert_eq!(
            std::fs::read_to_string(root.join("_var_log/messages"))?,
            "hello\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("_var_log_messages"))?,
            "hello\n"
        );
        assert_eq!(mode(&root.join("_var_log_messages"))?, 0o640);
        Ok(())
    }

    /// The paths `names` in `d`, probed and expanded as in a VM: the paths,
    /// the output folder, what would be copied and the report.
    type Probe = (Vec<String>, PathBuf, Vec<(Artifact, Kind)>, VmCollection);
    fn probe_in(d: &Path, names: &[&str]) -> Result<Probe, Box<dyn std::error::Error>> {
        let paths: Vec<String> = names
            .iter()
            .map(|p| format!("{}/{p}", d.display()))
            .collect();
        let out = d.join("out");
        let artifacts = plan("vm0", &paths, &out)?;
        let probed = run_probe(&artifacts, d)?;
        let mut report = VmCollection::default();
        let found = expand("vm0", &artifacts, probed, &out, &mut report);
        Ok((paths, out, found, report))
    }

    /// [`PROBE`] run by the local `sh` in `cwd`, as a VM runs it.
    fn run_probe(
        artifacts: &[Artifact],
        cwd: &Path,
    ) -> Result<Vec<Probed>, Box<dyn std::error::Error>> {
        let ran = std::process::Command::new("sh")
            .args(["-c", PROBE, "sh"])
            .args(artifacts.iter().map(Artifact::absolute))
            .current_dir(cwd)
            .output()?;
        assert!(ran.status.success());
        Ok(parse_probe(&ran.stdout, artifacts).ok_or("an answer per path")?)
    }

    #[test]
    fn the_probe_expands_patterns_in_the_shell_and_keeps_names_as_data() -> TestResult {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::write(d.join("otopi-1.log"), "1")?;
        std::fs::write(d.join("otopi-2\n$(touch pwned).log"), "2")?;
        std::fs::create_dir(d.join("otopi-dir"))?;
        let (paths, _out, found, report) =
            probe_in(d, &["otopi*", "none-*", "otopi-1.log", "gone", "x[1]"])?;
        let got: Vec<(String, char)> = found
            .iter()
            .map(|(a, k)| {
                (
                    a.guest
                        .trim_start_matches(&*d.to_string_lossy())
                        .to_string(),
                    *k,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/otopi-1.log".into(), 'f'),
                ("/otopi-2\n$(touch pwned).log".into(), 'f'),
                ("/otopi-dir".into(), 'd'),
            ]
        );
        assert_eq!(
            report.missing,
            vec![paths[1].clone(), paths[3].clone(), paths[4].clone()]
        );
        assert!(!d.join("pwned").exists());
        let e = CollectError::Missing {
            vm: "vm0".into(),
            paths: vec!["/tmp/otopi*".into(), "/gone".into()],
        };
        assert!(
            e.to_string()
                .ends_with("/tmp/otopi* (matched nothing), /gone"),
            "{e}"
        );
        Ok(())
    }

    /// Issue 18 (finding 4): a path with `..` is resolved by the VM's shell
    /// (through links, as Lago's `scp` did) and lands under its flattened
    /// name; one that resolves to nothing is missing, and the others are
    /// collected all the same.
    #[test]
    fn the_probe_resolves_parent_dirs_in_the_shell() -> TestResult {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        std::fs::create_dir_all(d.join("other/inner"))?;
        std::fs::create_dir_all(d.join("sub"))?;
        std::os::unix::fs::symlink(d.join("other/inner"), d.join("sub/link"))?;
        std::fs::write(d.join("other/x"), "physical")?;
        std::fs::write(d.join("sub/x"), "lexical")?;
        std::fs::write(d.join("plain"), "p")?;
        let (paths, out, found, report) =
            probe_in(d, &["sub/link/../x", "sub/link/..", "nope/../x", "plain"])?;
        let artifacts = plan("vm0", &paths, &out)?;
        let real = d.canonicalize()?;
        let got: Vec<(String, String, PathBuf, char)> = found
            .iter()
            .map(|(a, k)| (a.guest.clone(), a.absolute(), a.dest.clone(), *k))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    paths[0].clone(),
                    format!("{}/other/x", real.display()),
                    out.join(artifact_name(&paths[0])),
                    'f'
                ),
                (
                    paths[1].clone(),
                    format!("{}/other", real.display()),
                    out.join(artifact_name(&paths[1])),
                    'd'
                ),
                (
                    paths[3].clone(),
                    paths[3].clone(),
                    out.join(artifact_name(&paths[3])),
                    'f'
                ),
            ]
        );
        assert_eq!(report.missing, vec![paths[2].clone()]);
        // A guest's answer that does not resolve `..` is never copied.
        let forged = format!("0 f\x000 r f {}/../etc\x00", d.display());
        let probed = parse_probe(forged.as_bytes(), &artifacts[..1]).ok_or("parsed")?;
        let mut report = VmCollection::default();
        assert!(expand("vm0", &artifacts[..1], probed, &out, &mut report).is_empty());
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        Ok(())
    }

    #[test]
    fn probe_records_a_guest_forged_are_checked() -> TestResult {
        let out = Path::new("/out");
        let artifacts = plan("vm0", &["/tmp/a*".into(), "/etc/x".into()], out)?;
        // A plain path cannot get matches, a pattern's match cannot escape.
        let forged = b"1 g f /etc/shadow\x000 g f /tmp/../../root\x000 g f /tmp/ab\x001 f\x00";
        let probed = parse_probe(forged, &artifacts).ok_or("parsed")?;
        let mut report = VmCollection::default();
        let found = expand("vm0", &artifacts, probed, out, &mut report);
        let guests: Vec<&str> = found.iter().map(|(a, _)| a.guest.as_str()).collect();
        assert_eq!(guests, vec!["/tmp/ab", "/etc/x"]);
        assert!(found.iter().all(|(a, _)| a.dest.parent() == Some(out)));
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(parse_probe(b"0 g f /tmp/ab\x00", &artifacts).is_none());
        Ok(())
    }

    #[test]
    fn a_truncated_archive_is_an_error() -> TestResult {
        let dir = tempfile::tempdir()?;
        let artifacts = plan("vm0", &["/var/log".into()], dir.path())?;
        let data = sample_tar(Path::new("/nonexistent"))?;
        // Cut inside the first file's data block: nothing under a final
        // name, and nothing unfinished left.
        let cut = &data[..512 * 4 + 100];
        assert!(unpack(cut, &artifacts, dir.path()).is_err());
        assert!(!dir.path().join(PARTIAL_DIR).exists());
        // Cut inside a file's data: it is not left under its name.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular, 0o644, 10_000);
        b.append_data(&mut h, "var/log/big", &[7u8; 10_000][..])?;
        let data = b.into_inner()?;
        assert!(unpack(&data[..512 + 3000], &artifacts, dir.path()).is_err());
        assert!(!dir.path().join("_var_log/big").exists());
        assert!(!dir.path().join(PARTIAL_DIR).exists());
        Ok(())
    }

    /// Issue 18 (finding 10): what a killed collect left (an unfinished
    /// file in [`PARTIAL_DIR`]) is removed by the next one; an artifact
    /// cannot take that name.
    #[test]
    fn leftovers_of_an_interrupted_collect_are_removed() -> TestResult {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join(PARTIAL_DIR))?;
        std::fs::write(dir.path().join(PARTIAL_DIR).join("1"), "trunc")?;
        let artifacts = plan("vm0", &["/var/log".into()], dir.path())?;
        let data = sample_tar(Path::new("/nonexistent"))?;
        unpack(&data[..], &artifacts, dir.path())?;
        assert!(!dir.path().join(PARTIAL_DIR).exists());
        assert!(dir.path().join("_var_log/messages").is_file());
        let e = plan("vm0", &[PARTIAL_DIR.into()], dir.path()).err();
        assert!(matches!(e, Some(CollectError::BadPath { .. })), "{e:?}");
        Ok(())
    }
}
