//! Pseudo-terminals: a test plays the user on the master side.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A pseudo-terminal pair.
pub struct Pty {
    pub master: std::fs::File,
    pub slave: OwnedFd,
}

impl Pty {
    /// A pair with the system's default window size.
    pub fn open() -> Pty {
        open(None)
    }

    /// A pair whose window is `rows` x `cols`.
    pub fn with_size(rows: u16, cols: u16) -> Pty {
        open(Some(libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }))
    }
}

fn open(size: Option<libc::winsize>) -> Pty {
    let (mut master, mut slave) = (0, 0);
    let ws = size.as_ref().map_or(std::ptr::null(), |w| w as *const _);
    // SAFETY: openpty writes two new descriptors into the given integers;
    // the name may be null, the terminal settings and window size null or
    // pointing to live values.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            ws,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe {
        Pty {
            master: std::fs::File::from_raw_fd(master),
            slave: OwnedFd::from_raw_fd(slave),
        }
    }
}

/// The terminal settings of `fd`.
pub fn termios(fd: i32) -> libc::termios {
    // SAFETY: tcgetattr fills the zeroed struct.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0);
        t
    }
}

/// Collects everything the master side reads, in a thread of its own.
pub fn reader(master: &std::fs::File) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let mut m = master.try_clone().expect("dup master");
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = m.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().expect("buffer").extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// Waits until the [`reader`]'s buffer holds `needle`, at most `limit`.
pub fn wait_for(buf: &Arc<Mutex<Vec<u8>>>, needle: &str, limit: Duration) {
    let start = Instant::now();
    loop {
        let text = String::from_utf8_lossy(&buf.lock().expect("buffer")).into_owned();
        if text.contains(needle) {
            return;
        }
        assert!(start.elapsed() < limit, "no {needle:?} in output: {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit code of `child` once it exits (-1 for a signal); kills it
/// and fails after `limit`.
pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the child did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
