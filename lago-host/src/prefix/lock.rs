//! Locks that keep two lago processes from working on one prefix (or one
//! workdir) at once.
//!
//! Each prefix has a lock file `<prefix>/.lock`; each workdir
//! `<workdir>/.lock` (std `File::lock`, an `flock`: released by the kernel
//! when the process ends, however it ends). Who holds a lock writes
//! `<pid> <verb>` into the file, so the one refused can say who it is.
//!
//! - `init` holds its workdir shared and its new prefix exclusive;
//! - `start`, `cleanup` and `destroy` hold the prefix exclusive (`destroy`
//!   also the workdir shared, and exclusive only to remove the workdir);
//! - `destroy --all-prefixes` holds the workdir exclusive.
//!
//! A lock that is taken is refused at once with [`PrefixError::Busy`]
//! (never waited for: a verb such as `start` can run for minutes).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::PrefixError;

/// The lock file's name in a prefix or workdir.
pub const LOCK_FILE: &str = ".lock";

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

impl Lock {
    /// Take the lock of the folder `dir` for `verb`, or fail at once with
    /// [`PrefixError::Busy`] naming who holds it.
    pub fn take(dir: &Path, mode: LockMode, verb: &str) -> Result<Lock, PrefixError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| PrefixError::io(&path, e))?;
        let got = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match got {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(PrefixError::Busy {
                    path: dir.to_path_buf(),
                    holder: describe_holder(&holder),
                });
            }
            Err(TryLockError::Error(e)) => return Err(PrefixError::io(&path, e)),
        }
        if mode == LockMode::Exclusive {
            // Who holds it, for the message of whoever is refused.
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{} {verb}", std::process::id());
        }
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

fn describe_holder(text: &str) -> String {
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(pid), Some(verb)) if pid.bytes().all(|b| b.is_ascii_digit()) => {
            format!("`lago {verb}` (pid {pid})")
        }
        _ => "another lago process".to_string(),
    }
}
