//! Running one command on a session channel.

use std::time::Duration;

use bytes::Bytes;
use russh::{ChannelMsg, Sig};

use super::channel::Started;
use super::{SshError, SshTarget};

/// The outcome of a remote command, as Lago's `CommandStatus`.
///
/// `out` and `err` hold at most [`MAX_OUTPUT`] bytes each, plus a note
/// when more was dropped.
///
/// `code` is the exit status; a command killed by a signal gets
/// `128 + signal number` (as a POSIX shell reports it, e.g. 137 for KILL), or
/// `-1` when the signal has no known number or the server closed the channel
/// without reporting any status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandStatus {
    pub code: i32,
    pub out: Vec<u8>,
    pub err: Vec<u8>,
}

impl CommandStatus {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn out_str(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn err_str(&self) -> String {
        String::from_utf8_lossy(&self.err).into_owned()
    }
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Receives output as it arrives. Returning `false` stops the command
/// (the channel is closed).
pub(crate) trait OutputSink: Send {
    fn push(
        &mut self,
        stream: OutputStream,
        data: Bytes,
    ) -> impl std::future::Future<Output = bool> + Send;
}

/// The most bytes of each output stream (stdout, stderr) of a command that
/// are kept in memory for a [`CommandStatus`]: 64 MiB. Past it the rest is
/// read and dropped, and a note saying how much was dropped ends the stream
/// (a guest's command can print without end; for large output use a
/// streaming call such as `exec_stream`).
pub const MAX_OUTPUT: usize = 64 << 20;

/// One output stream kept up to a limit.
#[derive(Default)]
pub(crate) struct Capped {
    pub kept: Vec<u8>,
    dropped: u64,
}

impl Capped {
    fn push(&mut self, data: &[u8], limit: usize) {
        let room = limit.saturating_sub(self.kept.len());
        let take = room.min(data.len());
        self.kept.extend_from_slice(&data[..take]);
        self.dropped += (data.len() - take) as u64;
    }

    /// The bytes kept, with the note when some were dropped.
    fn finish(mut self, limit: usize) -> Vec<u8> {
        if self.dropped > 0 {
            self.kept.extend_from_slice(
                format!(
                    "\n[lago: output truncated: {} more bytes past the limit of {limit} bytes were dropped]\n",
                    self.dropped
                )
                .as_bytes(),
            );
        }
        self.kept
    }
}

/// Collects output for a [`CommandStatus`], each stream up to `limit`
/// bytes ([`MAX_OUTPUT`] by default).
pub(crate) struct Collect {
    out: Capped,
    err: Capped,
    limit: usize,
}

impl Default for Collect {
    fn default() -> Self {
        Collect::with_limit(MAX_OUTPUT)
    }
}

impl Collect {
    pub fn with_limit(limit: usize) -> Self {
        Collect {
            out: Capped::default(),
            err: Capped::default(),
            limit,
        }
    }

    /// stdout and stderr, each with its truncation note if any.
    pub fn finish(self) -> (Vec<u8>, Vec<u8>) {
        (self.out.finish(self.limit), self.err.finish(self.limit))
    }
}

impl OutputSink for Collect {
    async fn push(&mut self, stream: OutputStream, data: Bytes) -> bool {
        match stream {
            OutputStream::Stdout => self.out.push(&data, self.limit),
            OutputStream::Stderr => self.err.push(&data, self.limit),
        }
        true
    }
}

/// The exit code for a signal name (Linux numbering): `128 + n`, or -1.
pub(crate) fn signal_code(sig: &Sig) -> i32 {
    let n = match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(name) => match name.trim_start_matches("SIG") {
            "TRAP" => 5,
            "BUS" => 7,
            "USR2" => 12,
            "STKFLT" => 16,
            "CHLD" => 17,
            "CONT" => 18,
            "STOP" => 19,
            "TSTP" => 20,
            "TTIN" => 21,
            "TTOU" => 22,
            "URG" => 23,
            "XCPU" => 24,
            "XFSZ" => 25,
            "VTALRM" => 26,
            "PROF" => 27,
            "WINCH" => 28,
            "IO" => 29,
            "PWR" => 30,
            "SYS" => 31,
            _ => return -1,
        },
    };
    128 + n
}

/// The program name of a command line, for messages (arguments may hold
/// secrets).
pub(crate) fn program_of(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or("");
    let first = first.trim_matches('\'');
    let mut s: String = first.chars().take(60).collect();
    if s.len() < first.len() {
        s.push('…');
    }
    format!("`{s}`")
}

/// Runs a started command: sends `stdin` (then EOF; no stdin means an
/// empty one), passes output to `sink`, reads until the channel closes and
/// returns the exit code. `timeout` bounds the run; on expiry the command
/// is sent SIGKILL (when the server supports it) and the channel closed.
/// `command` is for messages only.
pub(crate) async fn run<S: OutputSink>(
    target: &SshTarget,
    started: Started,
    command: &str,
    stdin: Option<Bytes>,
    timeout: Option<Duration>,
    sink: &mut S,
) -> Result<i32, SshError> {
    let Started {
        channel,
        permit,
        early,
    } = started;
    let (mut rd, wr) = channel.split();
    let work = async {
        let writer = async {
            if let Some(data) = stdin {
                wr.data_bytes(data).await?;
            }
            wr.eof().await
        };
        tokio::pin!(writer);
        let reader = read_until_close(&mut rd, early, sink);
        tokio::pin!(reader);
        let mut writer_done = false;
        loop {
            tokio::select! {
                r = &mut writer, if !writer_done => {
                    writer_done = true;
                    if let Err(e) = r {
                        // The command may exit without reading its input; its
                        // exit status tells what happened.
                        tracing::debug!(vm = %target.name, "stdin not fully sent: {e}");
                    }
                }
                r = &mut reader => break r,
            }
        }
    };
    let outcome = match timeout {
        Some(t) => match tokio::time::timeout(t, work).await {
            Ok(o) => o,
            Err(_) => {
                let _ = wr.signal(Sig::KILL).await;
                let _ = wr.close().await;
                return Err(SshError::Timeout {
                    vm: target.name.clone(),
                    what: format!("command {} still running", program_of(command)),
                    after: t,
                });
            }
        },
        None => work.await,
    };
    drop(permit);
    match outcome {
        ReadOutcome::Exited(code) => Ok(code),
        ReadOutcome::SinkClosed => {
            let _ = wr.close().await;
            Ok(-1)
        }
    }
}

enum ReadOutcome {
    Exited(i32),
    SinkClosed,
}

/// What one channel message means for a running command.
pub(crate) enum Event {
    Output(OutputStream, Bytes),
    Code(i32),
    Closed,
    Other,
}

pub(crate) fn classify(msg: ChannelMsg) -> Event {
    match msg {
        ChannelMsg::Data { data } => Event::Output(OutputStream::Stdout, data),
        ChannelMsg::ExtendedData { data, ext: 1 } => Event::Output(OutputStream::Stderr, data),
        ChannelMsg::ExitStatus { exit_status } => {
            Event::Code(i32::try_from(exit_status).unwrap_or(-1))
        }
        ChannelMsg::ExitSignal { signal_name, .. } => Event::Code(signal_code(&signal_name)),
        ChannelMsg::Close => Event::Closed,
        _ => Event::Other,
    }
}

async fn read_until_close<S: OutputSink>(
    rd: &mut russh::ChannelReadHalf,
    early: Vec<ChannelMsg>,
    sink: &mut S,
) -> ReadOutcome {
    let mut code = None;
    let mut early = early.into_iter();
    loop {
        let msg = match early.next() {
            Some(m) => m,
            None => match rd.wait().await {
                Some(m) => m,
                None => break,
            },
        };
        match classify(msg) {
            Event::Output(stream, data) => {
                if !sink.push(stream, data).await {
                    return ReadOutcome::SinkClosed;
                }
            }
            Event::Code(c) => code = Some(c),
            Event::Closed => break,
            Event::Other => {}
        }
    }
    ReadOutcome::Exited(code.unwrap_or(-1))
}

/// The remote command of `exec_script`: receive the script into a temporary
/// file, run it with stdin from /dev/null by the interpreter of its `#!`
/// line, remove it, exit with its status. A script without `#!` runs under
/// `bash` when the guest has it, else `sh`: Lago ran every deploy script as
/// `bash -s`, so scripts written for it use bash syntax without saying so.
/// The interpreter of a script without `#!`: bash when the guest has it.
const NO_SHEBANG_SHELL: &str =
    "$(if command -v bash >/dev/null 2>&1; then echo bash; else echo sh; fi)";

pub(crate) fn script_command(script: &[u8]) -> String {
    let interp = script
        .strip_prefix(b"#!")
        .and_then(|rest| rest.split(|b| *b == b'\n').next())
        .map(|line| String::from_utf8_lossy(line).trim().to_string())
        .filter(|l| !l.is_empty())
        .map(|line| match line.split_once([' ', '\t']) {
            // Like the kernel: the interpreter and at most one argument.
            Some((path, arg)) if !arg.trim().is_empty() => {
                format!(
                    "{} {}",
                    super::shell_quote(path),
                    super::shell_quote(arg.trim())
                )
            }
            Some((path, _)) => super::shell_quote(path).into_owned(),
            None => super::shell_quote(&line).into_owned(),
        })
        .unwrap_or_else(|| NO_SHEBANG_SHELL.to_string());
    let inner = format!(
        "f=$(mktemp) || exit 127; \
         cat >\"$f\" || {{ rm -f \"$f\"; exit 127; }}; \
         {interp} \"$f\" </dev/null; rc=$?; rm -f \"$f\"; exit $rc"
    );
    super::join_argv(&["sh", "-c", &inner])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(signal_code(&Sig::KILL), 137);
        assert_eq!(signal_code(&Sig::TERM), 143);
        assert_eq!(signal_code(&Sig::Custom("USR2".into())), 140);
        assert_eq!(signal_code(&Sig::Custom("NOPE".into())), -1);
    }

    #[test]
    fn program_names_only() {
        assert_eq!(program_of("echo secret"), "`echo`");
        assert_eq!(program_of("'my prog' x"), "`my`");
    }

    #[test]
    fn collected_output_is_capped_with_a_note() -> Result<(), Box<dyn std::error::Error>> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let mut sink = Collect::with_limit(10);
        rt.block_on(async {
            for _ in 0..1000 {
                sink.push(OutputStream::Stdout, Bytes::from_static(b"0123456"))
                    .await;
            }
            sink.push(OutputStream::Stderr, Bytes::from_static(b"short"))
                .await;
        });
        let (out, err) = sink.finish();
        let out = String::from_utf8(out)?;
        assert!(out.starts_with("0123456012\n[lago: output truncated: 6990 more bytes past the limit of 10 bytes were dropped]"), "{out}");
        assert_eq!(err, b"short");
        assert_eq!(MAX_OUTPUT, 64 * 1024 * 1024);
        Ok(())
    }

    #[test]
    fn script_interpreters() {
        assert!(script_command(b"echo hi\n").contains(&format!(" {NO_SHEBANG_SHELL} \"$f\"")));
        assert!(script_command(b"#!/bin/bash\necho").contains("/bin/bash \"$f\""));
        let c = script_command(b"#!/usr/bin/env python3 -u\n");
        assert!(
            c.contains("/usr/bin/env '\\''python3 -u'\\'' \"$f\""),
            "{c}"
        );
    }
}
