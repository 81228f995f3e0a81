//! The interactive shell, driven through a real pseudo-terminal: the test
//! binary re-runs itself as a child whose stdin/stdout is a PTY slave, the
//! parent plays the user on the master side.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ssh_support::{Keys, Server, LOCALHOST};
use lago::ssh::{Auth, HostKeyPolicy, SshPool, SshTarget};
use lago_test_support::pty::{reader, termios, wait_exit, wait_for, Pty};

const CHILD_ENV: &str = "LAGO_SSH_INTERACTIVE_CHILD";

/// Child side: connect and run `interactive`, exit with its code.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(4, '\u{1}').collect();
    let t = SshTarget {
        name: "vm-interactive".into(),
        host: LOCALHOST,
        port: parts[0].parse().unwrap(),
        user: "root".into(),
        auth: Auth::Key(parts[1].into()),
        host_key: HostKeyPolicy::Pinned(parts[2].into()),
        jump: None,
    };
    let cmd: Option<Vec<String>> = if parts[3].is_empty() {
        None
    } else {
        Some(parts[3].split('\u{2}').map(String::from).collect())
    };
    let code = SshPool::new().interactive(&t, cmd.as_deref()).unwrap();
    std::process::exit(code);
}

fn spawn_child(server: &Server, keys: &Keys, cmd: &[&str], stdio: Option<&OwnedFd>) -> Command {
    let spec = [
        server.port.to_string(),
        keys.client_key.display().to_string(),
        keys.host_pub.clone(),
        cmd.join("\u{2}"),
    ]
    .join("\u{1}");
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "interactive::child_entry",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env(CHILD_ENV, spec);
    if let Some(fd) = stdio {
        c.stdin(Stdio::from(fd.try_clone().unwrap()))
            .stdout(Stdio::from(fd.try_clone().unwrap()))
            .stderr(Stdio::from(fd.try_clone().unwrap()));
        // SAFETY: setsid and TIOCSCTTY between fork and exec, making the
        // PTY the child's controlling terminal (for SIGWINCH).
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
    }
    c
}

#[test]
fn pty_command_with_size_resize_input_and_exit_code() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let pty = Pty::with_size(40, 100);
    let before = termios(pty.slave.as_raw_fd());
    let out = reader(&pty.master);
    let mut child = spawn_child(
        &server,
        &keys,
        &[
            "sh",
            "-c",
            "stty size; echo ready; read x; stty size; echo \"got:$x\"; exit 7",
        ],
        Some(&pty.slave),
    )
    .spawn()
    .unwrap();
    wait_for(&out, "ready", Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert!(text.contains("40 100"), "{text:?}");
    // Raw mode while the session runs.
    let during = termios(pty.slave.as_raw_fd());
    assert_eq!(
        during.c_lflag & libc::ICANON,
        0,
        "raw mode during the session"
    );

    // Resize: the remote terminal follows.
    let ws = libc::winsize {
        ws_row: 50,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: sets the window size of our PTY.
    unsafe {
        libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
    }
    std::thread::sleep(Duration::from_millis(400));
    let mut m = pty.master.try_clone().unwrap();
    m.write_all(b"hello\r").unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(code, 7);
    wait_for(&out, "got:hello", Duration::from_secs(5));
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert!(text.contains("50 120"), "{text:?}");

    // The terminal is restored.
    let after = termios(pty.slave.as_raw_fd());
    assert_eq!(after.c_lflag, before.c_lflag);
    assert_eq!(after.c_iflag, before.c_iflag);
    assert_eq!(after.c_oflag, before.c_oflag);
}

#[test]
fn login_shell_exit_code() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let pty = Pty::with_size(24, 80);
    let before = termios(pty.slave.as_raw_fd());
    let out = reader(&pty.master);
    let mut child = spawn_child(&server, &keys, &[], Some(&pty.slave))
        .spawn()
        .unwrap();
    let mut m = pty.master.try_clone().unwrap();
    m.write_all(b"echo shell-$((40+2))\r").unwrap();
    wait_for(&out, "shell-42", Duration::from_secs(20));
    m.write_all(b"exit 5\r").unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(20)), 5);
    let after = termios(pty.slave.as_raw_fd());
    assert_eq!(after.c_lflag, before.c_lflag);
}

#[test]
fn killed_lago_restores_the_terminal() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let pty = Pty::with_size(24, 80);
    let before = termios(pty.slave.as_raw_fd());
    let out = reader(&pty.master);
    let mut child = spawn_child(
        &server,
        &keys,
        &["sh", "-c", "echo up; sleep 30"],
        Some(&pty.slave),
    )
    .spawn()
    .unwrap();
    wait_for(&out, "up", Duration::from_secs(20));
    assert_eq!(termios(pty.slave.as_raw_fd()).c_lflag & libc::ICANON, 0);
    // SAFETY: signals the child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let st = child.wait().unwrap();
    assert!(!st.success());
    let after = termios(pty.slave.as_raw_fd());
    assert_eq!(
        after.c_lflag, before.c_lflag,
        "terminal restored after SIGTERM"
    );
}

#[test]
fn without_a_terminal_stdin_is_relayed_and_no_pty_requested() {
    require_dropbear!();
    let keys = Keys::new();
    let server = Server::start(&keys);
    let mut child = spawn_child(
        &server,
        &keys,
        &["sh", "-c", "test -t 0 && echo tty; cat; exit 3"],
        None,
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped input\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("piped input\n"), "{text:?}");
    assert!(!text.contains("tty"), "{text:?}");
}
