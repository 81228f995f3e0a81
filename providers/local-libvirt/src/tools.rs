//! Running external tools (`qemu-img`, `xorriso`, `virt-customize`, `virsh`)
//! with an argv, never through a shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{ProviderError, Result};

/// The full path of `name` on `PATH`, if it is there and executable.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The command line, for messages.
pub fn argv_string(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `max` characters of `s` (on a character boundary).
fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs `cmd` (stdin closed, output captured); an error names `what`, the
/// command line, the exit status and the tail of stderr.
pub fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    run_logged(cmd, what, None)
}

/// [`run`], and when `log` is given, appends the command line and its whole
/// output to that file (the prefix's `lago.log`) whether it succeeds or not.
pub fn run_logged(cmd: &mut Command, what: &str, log: Option<&Path>) -> Result<Output> {
    let argv = argv_string(cmd);
    die_with_caller(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ProviderError::Command {
            what: what.to_string(),
            argv: argv.clone(),
            status: format!("could not run: {e}"),
            stderr: String::new(),
        })?;
    if let Some(log) = log {
        let mut text = format!("local-libvirt: {what}: $ {argv}\n");
        for stream in [&out.stdout, &out.stderr] {
            text.push_str(&String::from_utf8_lossy(stream));
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        text.push_str(&format!("local-libvirt: {what}: {}\n", out.status));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        if let Err(e) = written {
            return Err(ProviderError::io("writing the tool's output to", log, e));
        }
    }
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    Err(ProviderError::Command {
        what: what.to_string(),
        argv,
        status: match out.status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        },
        stderr: tail(text.trim(), 2000).to_string(),
    })
}

/// The tool is killed when the thread that runs it dies (lago killed with
/// SIGKILL in the middle of an init): a `virt-customize` left behind would
/// go on writing into an overlay that `destroy` then removes, its QEMU
/// appliance burning a core (libguestfs's recovery process stops the
/// appliance once `virt-customize` is gone). The calling thread waits for
/// the tool, so it lives as long as the tool should.
fn die_with_caller(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, and only
    // calls prctl(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reports_failures() {
        let mut ok = Command::new("true");
        assert!(run(&mut ok, "t").is_ok());
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo boom >&2; exit 3"]);
        let err = run(&mut bad, "testing").expect_err("fails").to_string();
        assert!(err.contains("testing"), "{err}");
        assert!(err.contains("status 3"), "{err}");
        assert!(err.contains("boom"), "{err}");
        let mut missing = Command::new("/nonexistent/tool");
        assert!(run(&mut missing, "t")
            .expect_err("fails")
            .to_string()
            .contains("could not run"));
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }

    #[test]
    fn which_finds_sh() {
        assert!(which("sh").is_some());
        assert!(which("surely-not-a-tool-here").is_none());
    }
}
