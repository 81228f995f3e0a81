//! SIGTERM, SIGINT and SIGHUP while `init` works: undo it as a failed init
//! (Lago did the same on SIGTERM and SIGHUP).
//!
//! While an [`InterruptGuard`] lives, the three signals are caught by a
//! handler that only writes the signal number into a pipe (all a signal
//! handler may safely do); a watcher thread reads it, runs the caller's
//! `on_signal` (the rollback) and ends the process with `128 + signal`, as
//! a shell reports a killed command. The main thread may be blocked in a
//! read that no flag would interrupt (a template from a slow source), so the
//! rollback cannot wait for it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals an interrupted init is undone for.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// The write end of the pipe, for the handler (-1: no guard).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` outlives the call.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// The signal name for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Catches [`SIGNALS`] until dropped; then the previous handlers are back.
pub struct InterruptGuard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
    write: Option<OwnedFd>,
}

impl InterruptGuard {
    /// Catch the signals; on one, `on_signal(signal)` runs on a watcher
    /// thread and the process then exits with `128 + signal`.
    pub fn install(on_signal_do: impl FnOnce(i32) + Send + 'static) -> std::io::Result<Self> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two descriptors of `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened and are owned here only.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut reader = std::fs::File::from(read);
        std::thread::Builder::new()
            .name("lago-interrupt".into())
            .spawn(move || {
                use std::io::Read;
                let mut byte = [0u8; 1];
                // 0 bytes: the guard was dropped (write end closed).
                if let Ok(1) = reader.read(&mut byte) {
                    let sig = i32::from(byte[0]);
                    on_signal_do(sig);
                    std::process::exit(128 + sig);
                }
            })?;
        use std::os::fd::AsRawFd;
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::SeqCst);
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction is a valid value to fill; the
            // handler only calls write(2).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut old) == 0 {
                    previous.push((sig, old));
                }
            }
        }
        Ok(InterruptGuard {
            previous,
            write: Some(write),
        })
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: restores the action saved by `install`.
            unsafe {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
        PIPE_WRITE.store(-1, Ordering::SeqCst);
        // Closing the write end ends the watcher without a rollback.
        self.write.take();
    }
}
