//! Locks that keep two lago processes from working on one prefix (or one
//! workdir) at once.
//!
//! Each prefix has a lock file `<prefix>/.lock`; each workdir
//! `<workdir>/.lock` (std `File::lock`, an `flock`: released by the kernel
//! when the process ends, however it ends). Who holds a lock writes
//! `<pid> <verb>` into the file (an exclusive holder replaces the content, a
//! shared one appends a line), so the one refused can say who it is: of the
//! lines, those whose pid holds a lock on the file (`/proc/locks`) are named.
//!
//! The lock file is opened without following a symlink and must be a
//! regular file: a link planted at `.lock` would otherwise have lago write
//! `<pid> <verb>` into whatever file it points to.
//!
//! - `init` holds its workdir shared and its new prefix exclusive;
//! - `start`, `cleanup` and `destroy` hold the prefix exclusive (`destroy`
//!   also the workdir shared, and exclusive only to remove the workdir);
//! - `destroy --all-prefixes` holds the workdir exclusive.
//!
//! A lock that is taken is refused at once with [`PrefixError::Busy`]
//! (never waited for: a verb such as `start` can run for minutes).
//!
//! Beside it, every write of the prefix's stored state (`virt/`, the
//! markers) happens under the prefix's *state lock* `<prefix>/.state.lock`
//! ([`StateLock`]): an exclusive `flock` held only for the write (or a
//! read-modify-write such as recording a snapshot), and waited for. Verbs
//! that do not hold the verb lock (`snapshot`, `revert`, service detection,
//! SDK calls) can run beside each other and beside `start`; the state lock
//! keeps their updates of one VM's spec from overwriting each other.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::PrefixError;

/// The lock file's name in a prefix or workdir.
pub const LOCK_FILE: &str = ".lock";
/// The state lock file's name in a prefix (see [`StateLock`]).
pub const STATE_LOCK_FILE: &str = ".state.lock";

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Others may hold it shared too (init in a workdir).
    Shared,
    /// Nobody else may hold it.
    Exclusive,
}

/// Open (or create) the lock file `path`: never through a symlink, never
/// blocking (a FIFO), and only a regular file; anything else is
/// [`PrefixError::BadLockFile`].
fn open_lock_file(path: &Path) -> Result<File, PrefixError> {
    crate::files::open_shared_lock(path, false).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => PrefixError::BadLockFile {
            path: path.to_path_buf(),
            what: e.to_string(),
        },
        _ => PrefixError::io(path, e),
    })
}

impl Lock {
    /// Take the lock of the folder `dir` for `verb`, or fail at once with
    /// [`PrefixError::Busy`] naming who holds it. A `.lock` that is a
    /// symlink or not a regular file is refused ([`PrefixError::BadLockFile`]).
    pub fn take(dir: &Path, mode: LockMode, verb: &str) -> Result<Lock, PrefixError> {
        let path = dir.join(LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        let got = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match got {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holding = file
                    .metadata()
                    .ok()
                    .and_then(|m| lock_holders(m.dev(), m.ino()));
                return Err(PrefixError::Busy {
                    path: dir.to_path_buf(),
                    holder: describe_holders(&text, holding.as_deref()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(PrefixError::io(&path, e)),
        }
        // Who holds it, for the message of whoever is refused. An exclusive
        // holder is alone: it replaces what earlier holders wrote.
        let line = format!("{} {verb}\n", std::process::id());
        if mode == LockMode::Exclusive {
            let _ = file.set_len(0);
            let _ = file.rewind();
        } else {
            let _ = file.seek(std::io::SeekFrom::End(0));
        }
        let _ = file.write_all(line.as_bytes());
        Ok(Lock { file, path })
    }

    /// Turn a held shared lock into an exclusive one, if nobody else holds
    /// it; `false` (still shared) when somebody does.
    pub fn try_upgrade(&self) -> Result<bool, PrefixError> {
        match self.file.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(PrefixError::io(&self.path, e)),
        }
    }
}

/// The state lock of a prefix, held while its stored state is written;
/// dropping it releases it (the kernel does too when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Wait for and take the state lock of the prefix folder `dir`
    /// (`<dir>/.state.lock`, created if absent). Holders keep it for one
    /// write, so the wait is short. A `.state.lock` that is a symlink or not
    /// a regular file is refused ([`PrefixError::BadLockFile`]).
    pub fn take(dir: &Path) -> Result<StateLock, PrefixError> {
        let path = dir.join(STATE_LOCK_FILE);
        let file = open_lock_file(&path)?;
        file.lock().map_err(|e| PrefixError::io(&path, e))?;
        Ok(StateLock { _file: file })
    }
}

/// Who holds the lock of the folder `dir` now (e.g. "`lago init` (pid
/// 20)"), without taking it (a probe that took it, even shared, would make
/// the holder's own exclusive `take` fail); `None` when nobody does or the
/// lock file is absent or unreadable.
pub fn holder(dir: &Path) -> Option<String> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let holding = lock_holders(meta.dev(), meta.ino())?;
    if holding.is_empty() {
        return None;
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    Some(describe_holders(&text, Some(&holding)))
}

/// The pids holding an flock on the file (device `dev`, inode `ino`), from
/// `/proc/locks` (`N: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<ino> 0 EOF`);
/// `None` when it cannot be read.
fn lock_holders(dev: u64, ino: u64) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    Some(
        text.lines()
            .filter(|l| !l.contains("->"))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 6 && f[1] == "FLOCK" && f[5] == want)
                    .then(|| f[4].parse().ok())
                    .flatten()
            })
            .collect(),
    )
}

/// The holders named by the lock file's `<pid> <verb>` lines: those whose
/// pid holds the lock now (all of them when `holding` is unknown), newest
/// first; "another lago process" when no line names one.
fn describe_holders(text: &str, holding: Option<&[u32]>) -> String {
    let mut named: Vec<String> = Vec::new();
    for line in text.lines().rev() {
        let Some((pid, verb)) = line.trim().split_once(' ') else {
            continue;
        };
        let Ok(pid_n) = pid.parse::<u32>() else {
            continue;
        };
        if holding.is_some_and(|h| !h.contains(&pid_n)) {
            continue;
        }
        let one = format!("`lago {}` (pid {pid})", verb.trim());
        if !named.contains(&one) {
            named.push(one);
        }
    }
    if named.is_empty() {
        "another lago process".to_string()
    } else {
        named.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_named_from_live_lines() {
        let text = "10 init\n20 init\n";
        assert_eq!(describe_holders(text, Some(&[20])), "`lago init` (pid 20)");
        assert_eq!(
            describe_holders(text, None),
            "`lago init` (pid 20) and `lago init` (pid 10)"
        );
        assert_eq!(describe_holders("junk", None), "another lago process");
    }

    #[test]
    fn a_lock_file_that_is_a_link_or_a_folder_is_refused() -> std::io::Result<()> {
        let t = tempfile::tempdir()?;
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious")?;
        let d = t.path().join("p");
        std::fs::create_dir(&d)?;
        std::os::unix::fs::symlink(&victim, d.join(LOCK_FILE))?;
        let e = Lock::take(&d, LockMode::Exclusive, "destroy");
        assert!(matches!(e, Err(PrefixError::BadLockFile { .. })), "{e:?}");
        assert_eq!(std::fs::read_to_string(&victim)?, "precious");
        std::fs::remove_file(d.join(LOCK_FILE))?;
        std::fs::create_dir(d.join(LOCK_FILE))?;
        let e = Lock::take(&d, LockMode::Shared, "init");
        assert!(matches!(e, Err(PrefixError::BadLockFile { .. })), "{e:?}");
        // A held lock names its holder (this process).
        let d2 = t.path().join("q");
        std::fs::create_dir(&d2)?;
        let _held = Lock::take(&d2, LockMode::Shared, "init").map_err(std::io::Error::other)?;
        let busy = Lock::take(&d2, LockMode::Exclusive, "destroy");
        let Err(PrefixError::Busy { holder, .. }) = busy else {
            panic!("{busy:?}");
        };
        assert_eq!(holder, format!("`lago init` (pid {})", std::process::id()));
        Ok(())
    }
}
