//! [`Lago`]: one run of a `lago` binary, built up then run.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use crate::assert::{echo, text};

/// A run of the `lago` binary at a path: its folder, environment, arguments
/// and stdin. Clone a configured one to run it several times.
///
/// ```no_run
/// # use lago_test_support::Lago;
/// let out = Lago::new("/usr/bin/lago").cwd("/tmp").home("/tmp/home").args(["list"]).output();
/// ```
#[derive(Clone, Debug)]
pub struct Lago {
    bin: PathBuf,
    cwd: Option<PathBuf>,
    clean_env: bool,
    env: Vec<(OsString, OsString)>,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    echo: bool,
}

impl Lago {
    /// A run of the binary at `bin`, in the test's folder and environment,
    /// with no arguments and an empty stdin.
    pub fn new(bin: impl AsRef<Path>) -> Lago {
        Lago {
            bin: bin.as_ref().to_path_buf(),
            cwd: None,
            clean_env: false,
            env: Vec::new(),
            args: Vec::new(),
            stdin: None,
            echo: false,
        }
    }

    /// Runs in `dir`.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Lago {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// `HOME` is `dir`.
    pub fn home(self, dir: impl AsRef<Path>) -> Lago {
        self.env("HOME", dir.as_ref())
    }

    /// Sets one variable (after [`Lago::clean_env`]'s removals).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Lago {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Sets each variable of `vars`.
    pub fn envs<K, V>(self, vars: impl IntoIterator<Item = (K, V)>) -> Lago
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        vars.into_iter().fold(self, |l, (k, v)| l.env(k, v))
    }

    /// Passes on no `LAGO*` or `XDG_*` variable of the test's environment
    /// (those set with [`Lago::env`] are given).
    pub fn clean_env(mut self) -> Lago {
        self.clean_env = true;
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Lago {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<A: AsRef<OsStr>>(self, args: impl IntoIterator<Item = A>) -> Lago {
        args.into_iter().fold(self, |l, a| l.arg(a))
    }

    /// Writes `input` to its stdin, then closes it.
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Lago {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    /// Prints the command line, exit code and output on the test's stderr
    /// (shown when a test fails).
    pub fn echo(mut self) -> Lago {
        self.echo = true;
        self
    }

    /// The [`Command`], to spawn or redirect as a test needs; stdin is null.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        if self.clean_env {
            for (k, _) in std::env::vars_os() {
                let name = k.to_string_lossy();
                if name.starts_with("LAGO") || name.starts_with("XDG_") {
                    cmd.env_remove(&k);
                }
            }
        }
        cmd.args(&self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs it to the end: its exit status, stdout and stderr.
    pub fn output(&self) -> Output {
        let mut cmd = self.command();
        let out = match &self.stdin {
            None => cmd.output().expect("run lago"),
            Some(input) => {
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn lago");
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(input)
                    .expect("write stdin");
                child.wait_with_output().expect("lago")
            }
        };
        if self.echo {
            let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
            echo(&format!("lago {}", args.join(" ")), &out);
        }
        out
    }

    /// Runs it, which must succeed; returns its stdout.
    pub fn ok(&self) -> String {
        let out = self.output();
        let args: Vec<_> = self.args.iter().map(|a| a.to_string_lossy()).collect();
        assert!(
            out.status.success(),
            "lago {} failed ({:?}): {}",
            args.join(" "),
            out.status.code(),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs it with stderr on a pseudo-terminal (stdout to null), reading
    /// the terminal while it runs; returns its exit status and what it
    /// wrote there.
    pub fn output_on_pty(&self) -> (ExitStatus, String) {
        let pty = crate::pty::Pty::open();
        let mut child = self
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::from(pty.slave))
            .spawn()
            .expect("spawn lago");
        let mut master = pty.master;
        // Read while it runs: the live view writes more than a pty buffers.
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Ends with EIO once no slave is open.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            seen
        });
        let status = child.wait().expect("wait");
        drop(child);
        (status, text(&reader.join().expect("reader")))
    }
}
