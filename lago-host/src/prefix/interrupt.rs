//! SIGTERM, SIGINT and SIGHUP while `init` works: undo it as a failed init
//! (Lago did the same on SIGTERM and SIGHUP).
//!
//! While an [`InterruptGuard`] lives, the three signals are caught by a
//! handler that only records the signal ([`interrupted`]) and writes its
//! number into a pipe (all a signal handler may safely do). A watcher thread
//! reads it and then, so that nothing writes into the prefix while it is
//! removed:
//! 1. keeps ending lago's child processes (`qemu-img`, ...) with SIGTERM,
//!    so a provider call in progress fails at once;
//! 2. waits for init's own thread to see the flag (its steps check
//!    [`interrupted`]), roll back and call [`park_until_exit`]: as long as
//!    lago still starts child processes (a provider finishing its loops) and
//!    [`GRACE`] after the last one, at most [`MAX_WAIT`];
//! 3. runs the caller's `on_signal` (which takes back whatever is left, and
//!    waits for a rollback init's thread is in the middle of) and ends the
//!    process with `128 + signal`, as a shell reports a killed command.
//!
//! The bound is there because init's thread may be blocked in a read that no
//! flag interrupts (a template from a slow source).

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The signals an interrupted init is undone for.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// How long the watcher waits for init's thread to roll back by itself once
/// lago has no child process left.
pub const GRACE: Duration = Duration::from_secs(2);
/// The longest the watcher waits for init's thread, children or not.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The write end of the pipe, for the handler (-1: no guard).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The signal caught (0: none).
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
/// Init's thread has rolled back and waits for the watcher to exit.
static PARKED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only the first signal counts; atomics and write(2) are
    // async-signal-safe.
    let _ = INTERRUPTED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` outlives the call.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// An error once a signal has interrupted init: its steps stop there.
pub fn stop_if_interrupted() -> Result<(), crate::error::Error> {
    match interrupted() {
        Some(sig) => Err(crate::error::Error::internal(format!(
            "init interrupted by {}",
            signal_name(sig)
        ))),
        None => Ok(()),
    }
}

/// The signal that interrupted init, if one did: init's steps check it and
/// stop (an error, then the rollback).
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// For init's thread once it has rolled back after a signal: tell the
/// watcher, and wait for it to end the process (with `128 + signal`), so
/// the error of the interrupted step is never reported as a failure.
pub fn park_until_exit() -> ! {
    PARKED.store(true, Ordering::SeqCst);
    loop {
        std::thread::park();
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

/// SIGTERM to every child process of lago (`/proc/*/stat` naming our pid
/// as parent; their children are left to them). Returns whether there was
/// one.
fn end_children() -> bool {
    let mut found = false;
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    for ent in rd.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(ent.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(me) {
            found = true;
            // SAFETY: kill(2) on a child of this process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    found
}

/// Catches [`SIGNALS`] until dropped; then the previous handlers are back.
pub struct InterruptGuard {
    previous: Vec<(libc::c_int, libc::sigaction)>,
    write: Option<OwnedFd>,
}

impl InterruptGuard {
    /// Catch the signals; on one, the watcher stops lago's children, waits
    /// (at most [`GRACE`]) for init's thread to roll back, then runs
    /// `on_signal_do(signal)` and exits the process with `128 + signal`.
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
                    let sig = interrupted().unwrap_or(i32::from(byte[0]));
                    let start = Instant::now();
                    let mut last_child = start;
                    // Children started meanwhile are ended too.
                    while !PARKED.load(Ordering::SeqCst)
                        && last_child.elapsed() < GRACE
                        && start.elapsed() < MAX_WAIT
                    {
                        if end_children() {
                            last_child = Instant::now();
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    on_signal_do(sig);
                    std::process::exit(128 + sig);
                }
            })?;
        use std::os::fd::AsRawFd;
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::SeqCst);
        let mut previous = Vec::new();
        for sig in SIGNALS {
            // SAFETY: a zeroed sigaction is a valid value to fill; the
            // handler only stores an atomic and calls write(2).
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
