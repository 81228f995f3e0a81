//! Files lago writes and owns, as primitives every layer above uses (the
//! prefix, the lease store, the template store): atomic writes
//! ([`write_atomic`]), lock files opened safely in shared folders
//! ([`open_shared_lock`]), and the marks of what lago made ([`owned`]).

pub mod owned;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Write `bytes` to `path` atomically: a temp file in the same folder,
/// fsync, rename over `path`, fsync the folder. `mode` is set on the temp
/// file before any byte is written.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    write_atomic_opt(path, bytes, mode, true)
}

pub fn write_atomic_opt(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    durable: bool,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    // The folder may be shared (the lease store): a file or a symbolic link
    // planted at the temporary name is removed, never followed.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if let Some(m) = mode {
        opts.mode(m);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        if let Some(m) = mode {
            // The umask may have narrowed it; set it exactly.
            f.set_permissions(fs::Permissions::from_mode(m))?;
        }
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)?;
        if durable {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// How a state file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Temp file, fsync, rename, fsync the folder.
    Durable,
    /// Temp file and rename, no fsync: the caller syncs the batch.
    Batch,
    /// Straight into a file that must not exist yet (a new prefix, whose
    /// `initialized` marker is written after a sync): no temp file.
    Fresh,
}

pub fn write_mode(
    path: &Path,
    bytes: &[u8],
    mode: Option<u32>,
    how: WriteMode,
) -> std::io::Result<()> {
    match how {
        WriteMode::Durable => write_atomic_opt(path, bytes, mode, true),
        WriteMode::Batch => write_atomic_opt(path, bytes, mode, false),
        WriteMode::Fresh => {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            if let Some(m) = mode {
                opts.mode(m);
            }
            let mut f = opts.open(path)?;
            if let Some(m) = mode {
                f.set_permissions(fs::Permissions::from_mode(m))?;
            }
            f.write_all(bytes)
        }
    }
}

/// Flush everything written to the filesystem holding `path` (one `syncfs`),
/// so a batch of files written without their own fsync is durable.
pub fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(path)?;
    // SAFETY: syncfs takes an open file descriptor, which `f` keeps open for the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Open (or create) a lock file, safely in a folder other users may write
/// (the prefix, the shared template store, the lease store): never through
/// a symlink, never blocking (a FIFO), and only a regular file. A refused
/// file is an `InvalidData` error saying what it is ("a symbolic link", "a
/// folder", "a FIFO or socket", "not a regular file"). With `read_only_ok`,
/// a lock file this user may not write (another user's, in a shared store)
/// is opened read-only: an `flock` needs only an open file.
pub fn open_shared_lock(path: &Path, read_only_ok: bool) -> std::io::Result<File> {
    let refused = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let open = |write: bool| {
        OpenOptions::new()
            .create(write)
            .truncate(false)
            .read(true)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => refused("a symbolic link"),
                Some(libc::EISDIR) => refused("a folder"),
                Some(libc::ENXIO) => refused("a FIFO or socket"),
                _ => e,
            })
    };
    let file = match open(true) {
        Err(e) if read_only_ok && e.kind() == std::io::ErrorKind::PermissionDenied => open(false),
        other => other,
    }?;
    if !file.metadata()?.file_type().is_file() {
        return Err(refused("not a regular file"));
    }
    Ok(file)
}
