//! The connection pool and the synchronous operations built on it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use russh::client;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::channel::{Pty, Start, Started};
use super::conn::{self, SshHandle};
use super::exec::{self, Collect, CommandStatus, OutputSink, OutputStream};
use super::options::PoolOptions;
use super::runtime::block_on;
use super::sftp;
use super::{join_argv, SshError, SshTarget};

/// What `wait_for_ssh` reports on success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SshReady {
    /// Attempts made, the successful one included.
    pub tries: u32,
    /// Time from the call until `true` ran successfully.
    pub elapsed: Duration,
}

/// Looked at every [`WATCH_INTERVAL`] while [`SshPool::wait_for_ssh_watched`]
/// waits: an `Err` ends the wait at once with [`SshError::Abandoned`]
/// holding it (e.g. the VM's console shows it cannot boot).
pub type WaitWatch = Box<dyn FnMut() -> Result<(), String> + Send>;

/// How often a [`WaitWatch`] is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// SSH connections to VMs, reused across calls.
///
/// Cheap to clone (clones share the connections) and usable from many
/// threads at once. One connection per distinct [`SshTarget`], opened on
/// first use and replaced when it breaks; operations on one VM share it
/// through separate channels. All methods block the calling thread; the
/// work runs on the SSH layer's shared tokio runtime.
#[derive(Clone)]
pub struct SshPool {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SshPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshPool")
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl Default for SshPool {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) struct Inner {
    pub(crate) opts: PoolOptions,
    config: Arc<client::Config>,
    slots: Mutex<HashMap<SshTarget, Arc<Slot>>>,
}

#[derive(Default)]
struct Slot {
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

struct Conn {
    handle: SshHandle,
    sessions: Arc<Semaphore>,
}

/// An open session channel, holding one of its connection's session slots.
pub(crate) struct Session {
    channel: russh::Channel<client::Msg>,
    permit: OwnedSemaphorePermit,
}

impl Session {
    pub(crate) fn into_parts(self) -> (russh::Channel<client::Msg>, OwnedSemaphorePermit) {
        (self.channel, self.permit)
    }
}

impl SshPool {
    pub fn new() -> Self {
        Self::with_options(PoolOptions::default())
    }

    pub fn with_options(opts: PoolOptions) -> Self {
        let config = conn::client_config(opts.keepalive_interval);
        SshPool {
            inner: Arc::new(Inner {
                opts,
                config,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn options(&self) -> &PoolOptions {
        &self.inner.opts
    }

    /// Runs `argv` on the VM: each element is shell-quoted (see
    /// [`join_argv`]) so the remote program receives exactly these
    /// arguments. `stdin` is sent then closed (`None`: an empty stdin).
    /// Output is read until the channel closes. `timeout` bounds connecting
    /// and running together; on expiry the command is killed (when the
    /// server honours signal requests) and `SshError::Timeout` returned.
    pub fn exec<S: AsRef<str>>(
        &self,
        target: &SshTarget,
        argv: &[S],
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<CommandStatus, SshError> {
        self.exec_command(target, &join_argv(argv), stdin, timeout)
    }

    /// Like [`exec`](Self::exec) with a command line given as is, parsed by
    /// the remote user's shell (variables, pipes and globs take effect).
    pub fn exec_command(
        &self,
        target: &SshTarget,
        command: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<CommandStatus, SshError> {
        let inner = self.inner.clone();
        let target = target.clone();
        let command = command.to_string();
        let stdin = stdin.map(Bytes::copy_from_slice);
        block_on(async move { inner.exec(&target, &command, stdin, timeout).await })
    }

    /// Runs a script on the VM. The script is received in full into a
    /// temporary file first, then run with stdin from `/dev/null` by the
    /// interpreter of its `#!` line (`sh` when it has none), so commands in
    /// the script that read stdin cannot eat the script itself; the file is
    /// removed afterwards and the script's exit status returned.
    pub fn exec_script(
        &self,
        target: &SshTarget,
        script: &[u8],
        timeout: Option<Duration>,
    ) -> Result<CommandStatus, SshError> {
        self.exec_command(target, &exec::script_command(script), Some(script), timeout)
    }

    /// Starts `argv` and returns its output as it arrives (for long or large
    /// output such as a tar stream). See [`ExecStream`].
    pub fn exec_stream<S: AsRef<str>>(
        &self,
        target: &SshTarget,
        argv: &[S],
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> ExecStream {
        let inner = self.inner.clone();
        let target = target.clone();
        let command = join_argv(argv);
        let stdin = stdin.map(Bytes::copy_from_slice);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        super::runtime::runtime().spawn(async move {
            let mut sink = StreamSink { tx: tx.clone() };
            let res = inner
                .exec_with(&target, &command, stdin, timeout, &mut sink)
                .await;
            let _ = tx
                .send(match res {
                    Ok(code) => Ok(StreamEvent::Exit(code)),
                    Err(e) => Err(e),
                })
                .await;
        });
        ExecStream { rx, done: false }
    }

    /// Waits until `true` runs successfully on the VM, polling fast.
    ///
    /// Each try connects (or reuses the pooled connection) and runs `true`,
    /// limited by `per_try_timeout`; a refused connection is retried after
    /// [`PoolOptions::retry_delay`] (50 ms), a failure past the TCP connect
    /// after [`PoolOptions::handshake_retry_delay`] (250 ms). Stops after `tries` tries
    /// (0: no limit) or when `overall` has elapsed, with
    /// [`SshError::NotReachable`] naming the VM and the number of tries, the
    /// last error as its source. A host-key mismatch or an unusable key
    /// fails at once. On success the connection stays pooled for what
    /// follows.
    ///
    /// Authentication refused for every method, for
    /// [`PoolOptions::auth_refused_grace`] in a row, ends the wait with
    /// [`SshError::Auth`] (the user and the methods tried).
    pub fn wait_for_ssh(
        &self,
        target: &SshTarget,
        tries: u32,
        per_try_timeout: Duration,
        overall: Duration,
    ) -> Result<SshReady, SshError> {
        self.wait_for_ssh_watched(target, tries, per_try_timeout, overall, None)
    }

    /// [`Self::wait_for_ssh`], also looking at `watch` every
    /// [`WATCH_INTERVAL`] (during an attempt too): when it returns an error
    /// the wait ends at once with [`SshError::Abandoned`].
    pub fn wait_for_ssh_watched(
        &self,
        target: &SshTarget,
        tries: u32,
        per_try_timeout: Duration,
        overall: Duration,
        watch: Option<WaitWatch>,
    ) -> Result<SshReady, SshError> {
        let inner = self.inner.clone();
        let target = target.clone();
        block_on(async move {
            inner
                .wait_for_ssh(&target, tries, per_try_timeout, overall, watch)
                .await
        })
    }

    /// Closes the pooled connection to `target`, if any (e.g. after the VM
    /// was stopped). The next operation connects again.
    pub fn disconnect(&self, target: &SshTarget) {
        let slot = self.inner.lock_slots().remove(target);
        if let Some(slot) = slot {
            block_on(async move {
                if let Some(conn) = slot.conn.lock().await.take() {
                    let _ = conn
                        .handle
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                }
            });
        }
    }

    /// Closes every pooled connection.
    pub fn disconnect_all(&self) {
        let targets: Vec<SshTarget> = self.inner.lock_slots().keys().cloned().collect();
        for t in targets {
            self.disconnect(&t);
        }
    }

    /// Number of live pooled connections (for tests and diagnostics).
    pub fn connection_count(&self) -> usize {
        let slots: Vec<Arc<Slot>> = self.inner.lock_slots().values().cloned().collect();
        slots
            .iter()
            .filter(|s| {
                s.conn
                    .try_lock()
                    .map(|c| c.as_ref().is_some_and(|c| !c.handle.is_closed()))
                    .unwrap_or(true)
            })
            .count()
    }

    /// Uploads a file or a folder (recursively) to `remote`, keeping
    /// permission modes. As `scp -r`: when `remote` is an existing
    /// directory, the source is copied into it under its own name.
    pub fn upload(&self, target: &SshTarget, local: &Path, remote: &str) -> Result<(), SshError> {
        let inner = self.inner.clone();
        let target = target.clone();
        let local = local.to_path_buf();
        let remote = remote.to_string();
        block_on(async move {
            let channel = inner.start(&target, Start::Subsystem("sftp"), None);
            sftp::upload(channel, &inner.opts, &target, &local, &remote).await
        })
    }

    /// Downloads a file or a folder (recursively) from `remote`, keeping
    /// permission modes. As `scp -r`: when `local` is an existing directory,
    /// the source is copied into it under its own name.
    pub fn download(&self, target: &SshTarget, remote: &str, local: &Path) -> Result<(), SshError> {
        let inner = self.inner.clone();
        let target = target.clone();
        let local = local.to_path_buf();
        let remote = remote.to_string();
        block_on(async move {
            let channel = inner.start(&target, Start::Subsystem("sftp"), None);
            sftp::download(channel, &inner.opts, &target, &remote, &local).await
        })
    }
}

impl Inner {
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<SshTarget, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, target: &SshTarget) -> Arc<Slot> {
        self.lock_slots().entry(target.clone()).or_default().clone()
    }

    /// The pooled connection, or a new one; `true` when reused.
    async fn connection(&self, target: &SshTarget) -> Result<(Arc<Conn>, bool), SshError> {
        let slot = self.slot(target);
        let mut guard = slot.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.handle.is_closed() {
                return Ok((c.clone(), true));
            }
        }
        *guard = None;
        let handle = tokio::time::timeout(
            self.opts.connect_timeout,
            conn::connect(target, self.config.clone()),
        )
        .await
        .map_err(|_| SshError::Timeout {
            vm: target.name.clone(),
            what: format!("connecting to {}", target.addr()),
            after: self.opts.connect_timeout,
        })??;
        let c = Arc::new(Conn {
            handle,
            sessions: Arc::new(Semaphore::new(self.opts.max_sessions_per_connection.max(1))),
        });
        *guard = Some(c.clone());
        Ok((c, false))
    }

    async fn forget(&self, target: &SshTarget, dead: &Arc<Conn>) {
        let slot = self.slot(target);
        let mut guard = slot.conn.lock().await;
        if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
            *guard = None;
        }
    }

    /// Opens a session channel, replacing a pooled connection that turns out
    /// to be dead (once).
    pub(crate) async fn open_session(&self, target: &SshTarget) -> Result<Session, SshError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (conn, reused) = self.connection(target).await?;
            let permit =
                conn.sessions
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| SshError::Channel {
                        vm: target.name.clone(),
                        what: "the connection was closed".into(),
                        source: None,
                    })?;
            let res = tokio::time::timeout(
                self.opts.channel_open_timeout,
                conn.handle.channel_open_session(),
            )
            .await;
            match res {
                Ok(Ok(channel)) => return Ok(Session { channel, permit }),
                Ok(Err(e)) if reused && attempt == 1 => {
                    tracing::debug!(vm = %target.name, "pooled SSH connection unusable ({e}); reconnecting");
                    self.forget(target, &conn).await;
                }
                Err(_) if reused && attempt == 1 => {
                    tracing::debug!(vm = %target.name, "pooled SSH connection not answering; reconnecting");
                    self.forget(target, &conn).await;
                }
                Ok(Err(e)) => {
                    return Err(SshError::Channel {
                        vm: target.name.clone(),
                        what: "cannot open a session channel".into(),
                        source: Some(Box::new(e)),
                    })
                }
                Err(_) => {
                    return Err(SshError::Timeout {
                        vm: target.name.clone(),
                        what: "opening a session channel".into(),
                        after: self.opts.channel_open_timeout,
                    })
                }
            }
        }
    }

    /// Opens a session channel and starts `what` on it, returning once the
    /// server accepted the request.
    ///
    /// A channel that the server closes before answering the request is
    /// retried on a new channel: nothing ran on it. (Dropbear up to at least
    /// 2022.83 closes a session channel that has no process yet whenever
    /// another session's process exits, so concurrent sessions on one
    /// connection hit this.)
    pub(crate) async fn start(
        &self,
        target: &SshTarget,
        what: Start<'_>,
        pty: Option<&Pty>,
    ) -> Result<Started, SshError> {
        const TRIES: u32 = 10;
        let describe = || match what {
            Start::Exec(c) => exec::program_of(c),
            Start::Shell => "a shell".to_string(),
            Start::Subsystem(n) => format!("the {n} subsystem"),
        };
        for attempt in 1..=TRIES {
            let session = self.open_session(target).await?;
            let (mut channel, permit) = session.into_parts();
            let chan_err = |e| SshError::Channel {
                vm: target.name.clone(),
                what: format!("cannot start {}", describe()),
                source: Some(Box::new(e)),
            };
            if let Some(p) = pty {
                channel
                    .request_pty(false, &p.term, p.cols, p.rows, 0, 0, &[])
                    .await
                    .map_err(chan_err)?;
            }
            match what {
                Start::Exec(c) => channel.exec(true, c.as_bytes().to_vec()).await,
                Start::Shell => channel.request_shell(true).await,
                Start::Subsystem(n) => channel.request_subsystem(true, n).await,
            }
            .map_err(chan_err)?;
            let mut early = Vec::new();
            loop {
                match channel.wait().await {
                    Some(russh::ChannelMsg::Success) => {
                        return Ok(Started {
                            channel,
                            permit,
                            early,
                        })
                    }
                    Some(russh::ChannelMsg::Failure) => {
                        return Err(SshError::Remote {
                            vm: target.name.clone(),
                            what: format!("the SSH server refused to start {}", describe()),
                        })
                    }
                    Some(russh::ChannelMsg::Eof)
                    | Some(russh::ChannelMsg::WindowAdjusted { .. }) => {}
                    Some(russh::ChannelMsg::Close) | None => break,
                    Some(m) => {
                        // Output before the reply: it runs.
                        early.push(m);
                        return Ok(Started {
                            channel,
                            permit,
                            early,
                        });
                    }
                }
            }
            tracing::debug!(vm = %target.name, attempt, "the server closed a new channel before starting {}; retrying", describe());
        }
        Err(SshError::Channel {
            vm: target.name.clone(),
            what: format!(
                "the server closed {TRIES} new channels in a row before starting {}",
                describe()
            ),
            source: None,
        })
    }

    /// [`start`](Self::start) within `timeout` (when given); returns the
    /// time left.
    pub(crate) async fn start_within(
        &self,
        target: &SshTarget,
        what: Start<'_>,
        pty: Option<&Pty>,
        timeout: Option<Duration>,
    ) -> Result<(Started, Option<Duration>), SshError> {
        let begin = Instant::now();
        let started = match timeout {
            None => self.start(target, what, pty).await?,
            Some(t) => tokio::time::timeout(t, self.start(target, what, pty))
                .await
                .map_err(|_| SshError::Timeout {
                    vm: target.name.clone(),
                    what: format!("connecting to {} and starting the command", target.addr()),
                    after: t,
                })??,
        };
        Ok((started, timeout.map(|t| t.saturating_sub(begin.elapsed()))))
    }

    pub(crate) async fn exec_with<S: OutputSink>(
        &self,
        target: &SshTarget,
        command: &str,
        stdin: Option<Bytes>,
        timeout: Option<Duration>,
        sink: &mut S,
    ) -> Result<i32, SshError> {
        let (started, left) = self
            .start_within(target, Start::Exec(command), None, timeout)
            .await?;
        exec::run(target, started, command, stdin, left, sink).await
    }

    pub(crate) async fn exec(
        &self,
        target: &SshTarget,
        command: &str,
        stdin: Option<Bytes>,
        timeout: Option<Duration>,
    ) -> Result<CommandStatus, SshError> {
        let mut sink = Collect::default();
        let code = self
            .exec_with(target, command, stdin, timeout, &mut sink)
            .await?;
        let (out, err) = sink.finish();
        Ok(CommandStatus { code, out, err })
    }

    async fn wait_for_ssh(
        &self,
        target: &SshTarget,
        tries: u32,
        per_try_timeout: Duration,
        overall: Duration,
        mut watch: Option<WaitWatch>,
    ) -> Result<SshReady, SshError> {
        let start = Instant::now();
        let deadline = start + overall;
        let mut attempts = 0u32;
        let mut last: Option<SshError> = None;
        let mut refused_since: Option<Instant> = None;
        let abandoned = |why: String| SshError::Abandoned {
            vm: target.name.clone(),
            why,
        };
        loop {
            let now = Instant::now();
            if (tries != 0 && attempts >= tries) || now >= deadline {
                break;
            }
            if let Some(w) = watch.as_mut() {
                w().map_err(abandoned)?;
            }
            attempts += 1;
            let budget = per_try_timeout.min(deadline - now);
            let attempt = tokio::time::timeout(budget, self.exec(target, "true", None, None));
            tokio::pin!(attempt);
            let res = loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    _ = tokio::time::sleep(WATCH_INTERVAL), if watch.is_some() => {
                        if let Some(w) = watch.as_mut() {
                            w().map_err(abandoned)?;
                        }
                    }
                }
            };
            let res = match res {
                Ok(r) => r,
                Err(_) => Err(SshError::Timeout {
                    vm: target.name.clone(),
                    what: "connecting and running `true`".into(),
                    after: budget,
                }),
            };
            // Refused authentication, again and again: the key is wrong.
            let res = match res {
                Err(e @ SshError::Auth { .. }) => {
                    let since = *refused_since.get_or_insert(now);
                    if since.elapsed() >= self.opts.auth_refused_grace {
                        return Err(e);
                    }
                    Err(e)
                }
                other => {
                    refused_since = None;
                    other
                }
            };
            match res {
                Ok(status) if status.code == 0 => {
                    let ready = SshReady {
                        tries: attempts,
                        elapsed: start.elapsed(),
                    };
                    tracing::debug!(vm = %target.name, tries = attempts, elapsed = ?ready.elapsed, "SSH is up");
                    return Ok(ready);
                }
                Ok(status) => {
                    last = Some(SshError::Remote {
                        vm: target.name.clone(),
                        what: format!("`true` exited with code {}", status.code),
                    })
                }
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => {
                    tracing::trace!(vm = %target.name, attempt = attempts, "SSH not up yet: {}", e.chain_string());
                    last = Some(e);
                }
            }
            let quick = matches!(
                last,
                Some(SshError::Connect { .. }) | Some(SshError::Timeout { .. })
            );
            let pause = if quick {
                self.opts.retry_delay
            } else {
                self.opts.handshake_retry_delay
            };
            let pause = pause.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
        Err(SshError::NotReachable {
            vm: target.name.clone(),
            tries: attempts,
            elapsed: start.elapsed(),
            last: Box::new(last.unwrap_or_else(|| SshError::Timeout {
                vm: target.name.clone(),
                what: "no attempt fitted in the time given".into(),
                after: overall,
            })),
        })
    }
}

/// One item of an [`ExecStream`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command ended with this code (see [`CommandStatus::code`]); the
    /// last event.
    Exit(i32),
}

/// Output of a running command, in arrival order, as a blocking iterator.
/// Output is produced only as fast as it is consumed (bounded buffering).
/// Dropping the stream stops reading and closes the channel. Must not be
/// iterated from inside an async runtime.
pub struct ExecStream {
    rx: tokio::sync::mpsc::Receiver<Result<StreamEvent, SshError>>,
    done: bool,
}

impl Iterator for ExecStream {
    type Item = Result<StreamEvent, SshError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.rx.blocking_recv();
        if matches!(item, None | Some(Ok(StreamEvent::Exit(_))) | Some(Err(_))) {
            self.done = true;
        }
        item
    }
}

struct StreamSink {
    tx: tokio::sync::mpsc::Sender<Result<StreamEvent, SshError>>,
}

impl OutputSink for StreamSink {
    async fn push(&mut self, stream: OutputStream, data: Bytes) -> bool {
        let ev = match stream {
            OutputStream::Stdout => StreamEvent::Stdout(data.to_vec()),
            OutputStream::Stderr => StreamEvent::Stderr(data.to_vec()),
        };
        self.tx.send(Ok(ev)).await.is_ok()
    }
}

impl ExecStream {
    /// The command's stdout as a [`std::io::Read`] (e.g. a tar stream fed
    /// to an unpacker without holding it in memory); stderr is kept aside
    /// and the exit code is known at end of stream, see
    /// [`ExecReader::finish`].
    pub fn into_reader(self) -> ExecReader {
        ExecReader {
            stream: self,
            buf: Vec::new(),
            pos: 0,
            err: Vec::new(),
            code: None,
            failed: None,
        }
    }
}

/// stdout of a running command as a blocking reader; see
/// [`ExecStream::into_reader`].
pub struct ExecReader {
    stream: ExecStream,
    buf: Vec<u8>,
    pos: usize,
    err: Vec<u8>,
    code: Option<i32>,
    failed: Option<SshError>,
}

impl std::io::Read for ExecReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.stream.next() {
                Some(Ok(StreamEvent::Stdout(d))) => {
                    self.buf = d;
                    self.pos = 0;
                }
                Some(Ok(StreamEvent::Stderr(d))) => self.err.extend_from_slice(&d),
                Some(Ok(StreamEvent::Exit(c))) => {
                    self.code = Some(c);
                    return Ok(0);
                }
                Some(Err(e)) => {
                    let io = std::io::Error::other(e.chain_string());
                    self.failed = Some(e);
                    return Err(io);
                }
                None => return Ok(0),
            }
        }
    }
}

impl ExecReader {
    /// Reads what is left of stdout (discarding it) and returns the exit
    /// code with the collected stderr (`out` is empty: stdout went to the
    /// reader).
    pub fn finish(mut self) -> Result<CommandStatus, SshError> {
        let mut sink = std::io::sink();
        let copied = std::io::copy(&mut self, &mut sink);
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if let Err(e) = copied {
            return Err(SshError::Io {
                what: "cannot read the output of a remote command for",
                path: std::path::PathBuf::from("<stream>"),
                source: e,
            });
        }
        Ok(CommandStatus {
            code: self.code.unwrap_or(-1),
            out: Vec::new(),
            err: std::mem::take(&mut self.err),
        })
    }
}
