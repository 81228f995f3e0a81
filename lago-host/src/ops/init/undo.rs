//! What a failed or interrupted `init` takes back: the things it made, in
//! the order it made them, undone by [`run`] when a step fails or a signal
//! (SIGTERM, SIGINT, SIGHUP: see [`crate::prefix::interrupt`]) arrives.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Error;
use crate::files::owned;
use crate::network::LeaseStore;
use crate::prefix::interrupt::{self, InterruptGuard};
use crate::prefix::lock::Lock;
use crate::prefix::{Prefix, Workdir};

/// Things init made so far, taken back when it fails.
#[derive(Default)]
struct Made {
    workdir: Option<PathBuf>,
    prefix: Option<Prefix>,
    leased: Option<(LeaseStore, String)>,
    current_set: Option<Workdir>,
    /// The workdir lock (shared), upgraded to remove a workdir init made.
    workdir_lock: Option<Lock>,
    /// The new prefix's lock, held until init has finished or rolled back.
    prefix_lock: Option<Lock>,
}

impl Made {
    fn rollback(self) {
        if let Some((store, uuid)) = &self.leased {
            if let Err(e) = store.release_all(uuid) {
                tracing::warn!("could not release the leases of the failed init: {e}");
            }
        }
        if let Some(wd) = &self.current_set {
            let _ = wd.clear_current();
        }
        if let Some(p) = &self.prefix {
            // This process made the folder (create_dir), so it goes even
            // before its uuid marker was written; still without following
            // links or leaving the file system.
            // On a signal, init's own thread may still be writing in it:
            // a file it adds meanwhile fails a pass, so try again.
            let mut outcome = owned::remove_tree(p.path(), &[owned::PREFIX_MARKER]);
            for _ in 0..3 {
                if outcome.is_ok() {
                    break;
                }
                outcome = owned::remove_tree(p.path(), &[owned::PREFIX_MARKER]);
            }
            match outcome {
                Ok(left) if left.is_empty() => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Ok(left) => tracing::warn!(
                    "could not remove {}: {} stayed (another file system)",
                    p.path().display(),
                    left.len()
                ),
                Err(e) => tracing::warn!("could not remove {}: {e}", p.path().display()),
            }
        }
        if let (Some(w), Some(lock)) = (&self.workdir, &self.workdir_lock) {
            // Only when nothing else appeared in it meanwhile (another init).
            if let Err(e) = Workdir::at(w).remove_if_unused(lock) {
                tracing::warn!("could not remove {}: {e}", w.display());
            }
        }
    }
}

/// Init's record of what it made, shared with the signal watcher. Each
/// step records a thing as soon as it exists.
#[derive(Clone, Default)]
pub struct Undo(Arc<Mutex<Made>>);

impl Undo {
    fn made(&self) -> MutexGuard<'_, Made> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    /// This process created the workdir folder `path`.
    pub fn workdir(&self, path: PathBuf) {
        self.made().workdir = Some(path);
    }
    /// The workdir lock (held shared until init ends).
    pub fn workdir_lock(&self, lock: Lock) {
        self.made().workdir_lock = Some(lock);
    }
    /// This process created the prefix folder.
    pub fn prefix(&self, prefix: Prefix) {
        self.made().prefix = Some(prefix);
    }
    /// The prefix lock (held exclusive until init ends).
    pub fn prefix_lock(&self, lock: Lock) {
        self.made().prefix_lock = Some(lock);
    }
    /// Subnets may be leased for the prefix `uuid` from now on.
    pub fn leases(&self, store: LeaseStore, uuid: String) {
        self.made().leased = Some((store, uuid));
    }
    /// Init pointed the workdir's `current` at the new prefix.
    pub fn current(&self, wd: Workdir) {
        self.made().current_set = Some(wd);
    }
}

/// Run init's `steps` on `prefix`: when they fail, or a signal arrives
/// while they run, everything they recorded in the [`Undo`] is taken back.
/// On a signal the process ends with `128 + signal` after saying what was
/// undone (this function does not return then).
pub fn run<T>(prefix: &Prefix, steps: impl FnOnce(&Undo) -> Result<T, Error>) -> Result<T, Error> {
    let undo = Undo::default();
    let on_signal = undo.clone();
    let signalled_prefix = prefix.clone();
    let _interrupt = InterruptGuard::install(move |sig| {
        // Waits for a rollback init's thread is doing; takes what is left.
        std::mem::take(&mut *on_signal.made()).rollback();
        eprintln!(
            "lago: init interrupted by {}: {}",
            interrupt::signal_name(sig),
            interrupted_outcome(&signalled_prefix)
        );
    })
    .map_err(|e| Error::internal(format!("cannot catch signals during init: {e}")))?;
    let result = steps(&undo);
    // Under the lock: a signal from now on finds nothing left to undo (the
    // watcher sets the flag before it takes the lock).
    let mut made = undo.made();
    let outcome = match result {
        Ok(done) if interrupt::interrupted().is_none() => {
            // Done: locks released.
            drop(std::mem::take(&mut *made));
            Ok(done)
        }
        Ok(_) => {
            std::mem::take(&mut *made).rollback();
            Err(Error::internal("init interrupted"))
        }
        Err(e) => {
            std::mem::take(&mut *made).rollback();
            Err(e)
        }
    };
    drop(made);
    if interrupt::interrupted().is_some() {
        // The watcher reports the outcome and exits with 128 + signal: an
        // error of the interrupted step is not the story.
        interrupt::park_until_exit();
    }
    outcome
}

/// What an interrupted init left, for its last message: told from the
/// folder itself, so the message is true whoever rolled back.
fn interrupted_outcome(prefix: &Prefix) -> String {
    let path = prefix.path().display();
    if std::fs::symlink_metadata(prefix.path()).is_err() {
        "undone (prefix removed, leases released)".to_string()
    } else if prefix.is_initialized() {
        format!("init had already finished; the prefix {path} stays")
    } else if owned::is_lago_prefix(prefix.path()) {
        format!(
            "not completely undone: the prefix {path} stays (its leases are released); \
             `lago destroy` removes it (-P {} when it is not the current one)",
            prefix.name()
        )
    } else {
        format!("not completely undone: {path} stays (remove it by hand: it holds no uuid marker)")
    }
}
