//! The interactive shell: a PTY on the VM, the local terminal in raw mode,
//! stdin and stdout relayed, window size followed.
//!
//! The terminal is restored on every way out: normal end, error, panic
//! (the guard's `Drop`), and SIGTERM/SIGHUP/SIGINT/SIGQUIT delivered to lago
//! meanwhile (a handler restores it, then the signal takes its default
//! action). Stdin is read by a helper thread that polls, so it never stays
//! blocked on the terminal after the session.

use std::io::Write;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use super::channel::{Pty, Start, Started};
use super::exec::{classify, Event};
use super::runtime::block_on;
use super::OutputStream;
use super::{SshError, SshPool, SshTarget};
use bytes::Bytes;
use russh::ChannelMsg;

impl SshPool {
    /// Opens an interactive session on the VM: a login shell when `command`
    /// is `None`, otherwise `command` (argv, shell-quoted like
    /// [`exec`](Self::exec)). When stdin is a terminal the VM gets a PTY of
    /// the terminal's size (followed on resize) and the local terminal is
    /// put in raw mode for the session; otherwise no PTY is requested (as
    /// `ssh` does) and stdin is relayed as is. Returns the remote exit code
    /// (see [`CommandStatus::code`](super::CommandStatus::code)).
    pub fn interactive<S: AsRef<str>>(
        &self,
        target: &SshTarget,
        command: Option<&[S]>,
    ) -> Result<i32, SshError> {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(0) } == 1;
        let command = command.map(super::join_argv);
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        let size = if tty { window_size() } else { None };
        let inner = self.inner.clone();
        let t = target.clone();
        let started = block_on(async move {
            let pty = size.map(|(cols, rows)| Pty { term, cols, rows });
            let pty = if tty {
                Some(pty.unwrap_or(Pty {
                    term: "xterm".into(),
                    cols: 80,
                    rows: 24,
                }))
            } else {
                None
            };
            let what = match &command {
                Some(c) => Start::Exec(c),
                None => Start::Shell,
            };
            inner.start(&t, what, pty.as_ref()).await
        })?;

        let guard = if tty { TerminalGuard::enter() } else { None };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let reader = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("lago-ssh-stdin".into())
                .spawn(move || stdin_thread(tx, stop))
                .map_err(|source| SshError::Io {
                    what: "cannot start the stdin reader for",
                    path: "<stdin>".into(),
                    source,
                })?
        };
        let name = target.name.clone();
        let code = block_on(relay(started, rx, tty, name));
        stop.store(true, Ordering::SeqCst);
        let _ = reader.join();
        drop(guard);
        code
    }
}

/// Columns and rows of the terminal on stdin.
fn window_size() -> Option<(u32, u32)> {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            Some((u32::from(ws.ws_col), u32::from(ws.ws_row)))
        } else {
            None
        }
    }
}

fn stdin_thread(tx: tokio::sync::mpsc::Sender<Bytes>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if r == 0 {
            continue;
        }
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return; // EOF: dropping tx tells the relay
        }
        let chunk = Bytes::copy_from_slice(&buf[..n as usize]);
        if tx.blocking_send(chunk).is_err() {
            return;
        }
    }
}

async fn relay(
    started: Started,
    mut stdin: tokio::sync::mpsc::Receiver<Bytes>,
    tty: bool,
    vm: String,
) -> Result<i32, SshError> {
    let Started {
        channel,
        permit,
        early,
    } = started;
    let mut early = early.into_iter();
    let (mut rd, wr) = channel.split();
    let mut winch = if tty {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
    } else {
        None
    };
    let mut stdin_open = true;
    let mut code = None;
    loop {
        tokio::select! {
            data = stdin.recv(), if stdin_open => match data {
                Some(d) => {
                    if let Err(e) = wr.data_bytes(d).await {
                        tracing::debug!(vm, "input not sent: {e}");
                    }
                }
                None => {
                    stdin_open = false;
                    let _ = wr.eof().await;
                }
            },
            _ = async {
                match winch.as_mut() {
                    Some(w) => w.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((cols, rows)) = window_size() {
                    let _ = wr.window_change(cols, rows, 0, 0).await;
                }
            }
            msg = next_msg(&mut early, &mut rd) => match msg.map(classify) {
                None | Some(Event::Closed) => break,
                Some(Event::Output(OutputStream::Stdout, data)) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&data);
                    let _ = out.flush();
                }
                Some(Event::Output(OutputStream::Stderr, data)) => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(&data);
                    let _ = err.flush();
                }
                Some(Event::Code(c)) => code = Some(c),
                Some(Event::Other) => {}
            },
        }
    }
    drop(permit);
    tracing::debug!(vm, code, "interactive session ended");
    Ok(code.unwrap_or(-1))
}

async fn next_msg(
    early: &mut std::vec::IntoIter<ChannelMsg>,
    rd: &mut russh::ChannelReadHalf,
) -> Option<ChannelMsg> {
    match early.next() {
        Some(m) => Some(m),
        None => rd.wait().await,
    }
}

/// The saved terminal state, for the signal handler (a leaked box while a
/// guard is active, null otherwise).
static SAVED: AtomicPtr<libc::termios> = AtomicPtr::new(ptr::null_mut());

const RESTORE_ON: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT];

extern "C" fn restore_and_reraise(sig: libc::c_int) {
    let saved = SAVED.load(Ordering::SeqCst);
    // SAFETY: tcsetattr, signal and raise are async-signal-safe; `saved`
    // points to a live termios while the handler is installed.
    unsafe {
        if !saved.is_null() {
            libc::tcsetattr(0, libc::TCSANOW, saved);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Raw mode on stdin's terminal for its lifetime.
struct TerminalGuard {
    saved: libc::termios,
    old_actions: Vec<(libc::c_int, libc::sigaction)>,
}

impl TerminalGuard {
    fn enter() -> Option<TerminalGuard> {
        // SAFETY: plain termios and sigaction calls on valid structs.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let boxed = Box::into_raw(Box::new(saved));
            SAVED.store(boxed, Ordering::SeqCst);
            let mut old_actions = Vec::new();
            for sig in RESTORE_ON {
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = restore_and_reraise as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &new, &mut old) == 0 {
                    old_actions.push((sig, old));
                }
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSADRAIN, &raw);
            Some(TerminalGuard { saved, old_actions })
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        // SAFETY: restores what `enter` saved; the boxed copy is freed after
        // the handlers that use it are uninstalled.
        unsafe {
            libc::tcsetattr(0, libc::TCSADRAIN, &self.saved);
            for (sig, old) in &self.old_actions {
                libc::sigaction(*sig, old, ptr::null_mut());
            }
            let boxed = SAVED.swap(ptr::null_mut(), Ordering::SeqCst);
            if !boxed.is_null() {
                drop(Box::from_raw(boxed));
            }
        }
        let _ = std::io::stdout().flush();
    }
}
