//! Copying files and folders over SFTP, keeping permission modes.
//!
//! Symbolic links in the remote tree are followed (as `scp -r` does);
//! sockets, FIFOs and devices are skipped with a warning. Files are
//! streamed in 256 KiB chunks (uploads keep several writes in flight).
//!
//! Downloads treat the guest's server as untrusted (see the `download`
//! section): listed names must be one path component, modes keep their
//! `rwx` bits, local files are created new without following links, and
//! listings are bounded by [`PoolOptions::sftp_max_entries`](super::PoolOptions).

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::{RawSftpSession, SftpSession};
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::channel::Started;
use super::options::PoolOptions;
use super::{SshError, SshTarget};

const CHUNK: usize = 256 * 1024;
/// Folder nesting (and symlink-following) limit.
const MAX_DEPTH: usize = 64;

struct Sftp<'a> {
    target: &'a SshTarget,
    session: SftpSession,
    _permit: OwnedSemaphorePermit,
}

impl Sftp<'_> {
    fn err(&self, op: &'static str, path: &str, source: SftpError) -> SshError {
        sftp_err(self.target, op, path, source)
    }

    async fn stat(&self, path: &str) -> Result<Option<FileAttributes>, SshError> {
        match self.session.metadata(path).await {
            Ok(m) => Ok(Some(m)),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.err("stat", path, e)),
        }
    }

    async fn chmod(&self, path: &str, mode: u32) -> Result<(), SshError> {
        let attrs = FileAttributes {
            permissions: Some(mode & 0o7777),
            ..FileAttributes::empty()
        };
        self.session
            .set_metadata(path, attrs)
            .await
            .map_err(|e| self.err("chmod", path, e))
    }
}

/// A started SFTP subsystem channel as a stream, with its session permit
/// and the client configuration.
struct SftpChannel {
    stream: russh::ChannelStream<russh::client::Msg>,
    permit: OwnedSemaphorePermit,
    config: russh_sftp::client::Config,
}

impl SftpChannel {
    fn new(started: Started, opts: &PoolOptions) -> Self {
        SftpChannel {
            stream: started.channel.into_stream(),
            permit: started.permit,
            config: russh_sftp::client::Config {
                request_timeout_secs: opts.sftp_request_timeout.as_secs().max(1),
                ..Default::default()
            },
        }
    }
}

fn sftp_start_err(target: &SshTarget, source: SftpError) -> SshError {
    sftp_err(
        target,
        "session start (is an SFTP server installed in the VM?)",
        "",
        source,
    )
}

fn sftp_err(target: &SshTarget, op: &'static str, path: &str, source: SftpError) -> SshError {
    SshError::Sftp {
        vm: target.name.clone(),
        op,
        path: path.to_string(),
        source: Box::new(source),
    }
}

async fn open_sftp(channel: SftpChannel, target: &SshTarget) -> Result<Sftp<'_>, SshError> {
    let session = SftpSession::new_with_config(channel.stream, channel.config)
        .await
        .map_err(|e| sftp_start_err(target, e))?;
    Ok(Sftp {
        target,
        session,
        _permit: channel.permit,
    })
}

fn local_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SshError + 'a {
    move |source| SshError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn remote_join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn remote_basename(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// One entry of a local tree walk, in pre-order.
enum LocalEntry {
    Dir { rel: PathBuf, mode: u32 },
    File { rel: PathBuf, mode: u32 },
}

/// `root/rel`, or `root` itself for an empty `rel` (no trailing slash,
/// which would make a file path invalid).
fn join_rel(root: &Path, rel: &Path) -> PathBuf {
    if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

fn walk_local(root: &Path) -> Result<Vec<LocalEntry>, SshError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = join_rel(root, &rel);
        let meta = std::fs::metadata(&path).map_err(local_err("cannot read", &path))?;
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            if rel.components().count() > MAX_DEPTH {
                return Err(SshError::Io {
                    what: "folder nesting too deep (a symlink loop?) at",
                    path,
                    source: std::io::Error::other("too deep"),
                });
            }
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .map_err(local_err("cannot list", &path))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(local_err("cannot list", &path))?;
            names.sort();
            // Reverse so that popping visits names in order.
            for n in names.into_iter().rev() {
                stack.push(rel.join(n));
            }
            out.push(LocalEntry::Dir { rel, mode });
        } else if meta.is_file() {
            out.push(LocalEntry::File { rel, mode });
        } else {
            tracing::warn!(path = %path.display(), "not a file or folder; skipped");
        }
    }
    Ok(out)
}

/// Uploads the file or folder `local` to `remote` (into it when it is a
/// folder). `channel` starts the SFTP subsystem channel when awaited, after
/// the local tree was read.
pub(crate) async fn upload(
    channel: impl Future<Output = Result<Started, SshError>>,
    opts: &PoolOptions,
    target: &SshTarget,
    local: &Path,
    remote: &str,
) -> Result<(), SshError> {
    let root = local.to_path_buf();
    let entries = tokio::task::spawn_blocking(move || walk_local(&root))
        .await
        .map_err(|e| SshError::Io {
            what: "cannot walk",
            path: local.to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    let sftp = open_sftp(SftpChannel::new(channel.await?, opts), target).await?;
    let mut dest = remote.to_string();
    if let Some(m) = sftp.stat(remote).await? {
        if m.is_dir() {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.is_empty() {
                dest = remote_join(remote, &name);
            }
        }
    }
    let mut dir_modes = Vec::new();
    for entry in &entries {
        match entry {
            LocalEntry::Dir { rel, mode } => {
                let rpath = remote_of(&dest, rel);
                match sftp.stat(&rpath).await? {
                    Some(m) if m.is_dir() => {}
                    _ => sftp
                        .session
                        .create_dir(rpath.clone())
                        .await
                        .map_err(|e| sftp.err("mkdir", &rpath, e))?,
                }
                // Owner access while filling it; the real mode at the end.
                sftp.chmod(&rpath, 0o700).await?;
                dir_modes.push((rpath, *mode));
            }
            LocalEntry::File { rel, mode } => {
                let rpath = remote_of(&dest, rel);
                upload_file(&sftp, &join_rel(local, rel), &rpath, *mode).await?;
            }
        }
    }
    for (rpath, mode) in dir_modes.iter().rev() {
        sftp.chmod(rpath, *mode).await?;
    }
    let _ = sftp.session.close().await;
    Ok(())
}

fn remote_of(dest: &str, rel: &Path) -> String {
    let mut s = dest.to_string();
    for c in rel.components() {
        s = remote_join(&s, &c.as_os_str().to_string_lossy());
    }
    s
}

async fn upload_file(
    sftp: &Sftp<'_>,
    local: &Path,
    remote: &str,
    mode: u32,
) -> Result<(), SshError> {
    let mut src = tokio::fs::File::open(local)
        .await
        .map_err(local_err("cannot open", local))?;
    let attrs = FileAttributes {
        permissions: Some(0o600),
        ..FileAttributes::empty()
    };
    let mut dst = sftp
        .session
        .open_with_flags_and_attributes(
            remote,
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
            attrs,
        )
        .await
        .map_err(|e| sftp.err("create", remote, e))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src
            .read(&mut buf)
            .await
            .map_err(local_err("cannot read", local))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .await
            .map_err(|e| sftp.err("write", remote, e.into()))?;
    }
    dst.shutdown()
        .await
        .map_err(|e| sftp.err("close", remote, e.into()))?;
    sftp.chmod(remote, mode).await
}

// ---------------------------------------------------------------- download
//
// Everything the guest's SFTP server says is data: a listed name becomes
// one path component below the local destination or the download fails,
// modes keep their `rwx` bits only, files are created new (`O_EXCL`,
// `O_NOFOLLOW`: a link at the destination is replaced, never written
// through), and listings are read one reply at a time against a budget.

/// The longest file name taken from the guest (Linux's `NAME_MAX`).
const MAX_NAME: usize = 255;

/// An SFTP session for downloads, on the raw protocol so that a folder
/// listing is read reply by reply (and bounded), not collected whole.
struct RawSftp<'a> {
    target: &'a SshTarget,
    session: RawSftpSession,
    /// Entries (and empty replies) listed so far, against `max_entries`.
    listed: usize,
    max_entries: usize,
    _permit: OwnedSemaphorePermit,
}

impl RawSftp<'_> {
    fn err(&self, op: &'static str, path: &str, source: SftpError) -> SshError {
        sftp_err(self.target, op, path, source)
    }

    fn remote(&self, what: String) -> SshError {
        SshError::Remote {
            vm: self.target.name.clone(),
            what,
        }
    }

    async fn stat(&self, path: &str) -> Result<Option<FileAttributes>, SshError> {
        match self.session.stat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.err("stat", path, e)),
        }
    }

    /// The entries of the remote folder `dir`, `.` and `..` left out;
    /// fails on a name that is not one plain component ([`check_name`]) and
    /// once the download's entry budget is spent.
    async fn list(&mut self, dir: &str) -> Result<Vec<(String, FileAttributes)>, SshError> {
        let handle = self
            .session
            .opendir(dir)
            .await
            .map_err(|e| self.err("list", dir, e))?
            .handle;
        let listed = self.list_open(dir, &handle).await;
        let _ = self.session.close(handle).await;
        listed
    }

    async fn list_open(
        &mut self,
        dir: &str,
        handle: &str,
    ) -> Result<Vec<(String, FileAttributes)>, SshError> {
        let mut out = Vec::new();
        loop {
            let reply = match self.session.readdir(handle).await {
                Ok(r) => r,
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => return Err(self.err("list", dir, e)),
            };
            // An empty reply costs one too, so that a server answering
            // nothing forever is stopped as well.
            self.listed += reply.files.len().max(1);
            if self.listed > self.max_entries {
                return Err(self.remote(format!(
                    "listing {dir:?} over SFTP passed lago's limit of {} entries per download",
                    self.max_entries
                )));
            }
            for f in reply.files {
                if f.filename == "." || f.filename == ".." {
                    continue;
                }
                if let Err(why) = check_name(&f.filename) {
                    return Err(self.remote(format!(
                        "the SFTP server listed an entry {:?} in {dir:?}, a file name that {why}; \
                         refused (names from the VM must be one path component)",
                        f.filename
                    )));
                }
                out.push((f.filename, f.attrs));
            }
        }
        Ok(out)
    }
}

/// Whether a name listed by the guest is one plain path component: not
/// empty, no `/`, no NUL, at most [`MAX_NAME`] bytes (`.` and `..` are left
/// out before). `Err` says what is wrong with it.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("is empty")
    } else if name.contains('/') {
        Err("contains `/`")
    } else if name.contains('\0') {
        Err("contains a NUL byte")
    } else if name == "." || name == ".." {
        Err("names a folder itself")
    } else if name.len() > MAX_NAME {
        Err("is longer than 255 bytes")
    } else {
        Ok(())
    }
}

async fn open_raw_sftp(
    channel: SftpChannel,
    target: &SshTarget,
    max_entries: usize,
) -> Result<RawSftp<'_>, SshError> {
    let session = RawSftpSession::new_with_config(channel.stream, channel.config);
    session
        .init()
        .await
        .map_err(|e| sftp_start_err(target, e))?;
    Ok(RawSftp {
        target,
        session,
        listed: 0,
        max_entries,
        _permit: channel.permit,
    })
}

/// Makes room for a new file at `path`: an earlier file or a symbolic link
/// there is removed (never followed); a folder there is an error.
async fn clear_local(path: &Path) -> Result<(), SshError> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.is_dir() => Err(SshError::Io {
            what: "a folder is in the way of the file",
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::IsADirectory),
        }),
        Ok(_) => tokio::fs::remove_file(path)
            .await
            .map_err(local_err("cannot replace", path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(local_err("cannot inspect", path)(e)),
    }
}

/// Makes sure `path` is a folder (not a link to one): creates it when
/// missing; anything else there is an error.
async fn ensure_local_dir(path: &Path) -> Result<(), SshError> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SshError::Io {
            what: "not a folder (a file or link is in the way):",
            path: path.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => tokio::fs::create_dir(path)
            .await
            .map_err(local_err("cannot create", path)),
        Err(e) => Err(local_err("cannot inspect", path)(e)),
    }
}

/// Downloads the file or folder `remote` to `local` (into it when it is a
/// folder). `channel` starts the SFTP subsystem channel when awaited.
pub(crate) async fn download(
    channel: impl Future<Output = Result<Started, SshError>>,
    opts: &PoolOptions,
    target: &SshTarget,
    remote: &str,
    local: &Path,
) -> Result<(), SshError> {
    let channel = SftpChannel::new(channel.await?, opts);
    let mut sftp = open_raw_sftp(channel, target, opts.sftp_max_entries).await?;
    let attrs = sftp
        .session
        .stat(remote)
        .await
        .map_err(|e| sftp.err("stat", remote, e))?
        .attrs;
    // The user's own destination may be a link to a folder (as for scp);
    // nothing below it is ever followed.
    let mut dest = local.to_path_buf();
    if tokio::fs::metadata(local).await.is_ok_and(|m| m.is_dir()) {
        let name = remote_basename(remote);
        if !name.is_empty() && name != "." && name != ".." {
            dest = local.join(name);
        }
    }
    if !attrs.is_dir() {
        if !attrs.is_regular() {
            return Err(sftp.err(
                "download",
                remote,
                SftpError::UnexpectedBehavior("not a regular file or a folder".into()),
            ));
        }
        download_file(&sftp, remote, &dest, attrs.permissions.unwrap_or(0o644)).await?;
        let _ = sftp.session.close_session();
        return Ok(());
    }
    let mut dir_modes = Vec::new();
    let mut stack = vec![(
        remote.to_string(),
        dest,
        attrs.permissions.unwrap_or(0o755),
        0usize,
    )];
    while let Some((rdir, ldir, mode, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(sftp.err(
                "download",
                &rdir,
                SftpError::UnexpectedBehavior("folder nesting too deep (a symlink loop?)".into()),
            ));
        }
        ensure_local_dir(&ldir).await?;
        tokio::fs::set_permissions(&ldir, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(local_err("cannot chmod", &ldir))?;
        dir_modes.push((ldir.clone(), mode));
        let mut entries = sftp.list(&rdir).await?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (name, mut m) in entries {
            let rpath = remote_join(&rdir, &name);
            let lpath = ldir.join(&name);
            if m.is_symlink() {
                match sftp.stat(&rpath).await? {
                    Some(t) => m = t,
                    None => {
                        tracing::warn!(vm = %target.name, path = %rpath, "dangling symlink; skipped");
                        continue;
                    }
                }
            }
            if m.is_dir() {
                subdirs.push((rpath, lpath, m.permissions.unwrap_or(0o755), depth + 1));
            } else if m.is_regular() {
                download_file(&sftp, &rpath, &lpath, m.permissions.unwrap_or(0o644)).await?;
            } else {
                tracing::warn!(vm = %target.name, path = %rpath, "not a file or folder; skipped");
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    for (ldir, mode) in dir_modes.iter().rev() {
        tokio::fs::set_permissions(ldir, std::fs::Permissions::from_mode(mode & 0o777))
            .await
            .map_err(local_err("cannot chmod", ldir))?;
    }
    let _ = sftp.session.close_session();
    Ok(())
}

/// Copies the remote file to a new local file `local` (what was there is
/// replaced, never written through), with `mode`'s `rwx` bits.
async fn download_file(
    sftp: &RawSftp<'_>,
    remote: &str,
    local: &Path,
    mode: u32,
) -> Result<(), SshError> {
    let handle = sftp
        .session
        .open(remote, OpenFlags::READ, FileAttributes::empty())
        .await
        .map_err(|e| sftp.err("open", remote, e))?
        .handle;
    let copied = copy_remote_file(sftp, remote, &handle, local, mode).await;
    let _ = sftp.session.close(handle).await;
    copied
}

async fn copy_remote_file(
    sftp: &RawSftp<'_>,
    remote: &str,
    handle: &str,
    local: &Path,
    mode: u32,
) -> Result<(), SshError> {
    clear_local(local).await?;
    let mut dst = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(local)
        .await
        .map_err(local_err("cannot create", local))?;
    let mut offset = 0u64;
    loop {
        let data = match sftp.session.read(handle, offset, CHUNK as u32).await {
            Ok(d) => d.data,
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
            Err(e) => return Err(sftp.err("read", remote, e)),
        };
        if data.is_empty() {
            // Not the end (that is an EOF status): a server that would
            // answer this forever.
            return Err(sftp.err(
                "read",
                remote,
                SftpError::UnexpectedBehavior("the server sent no data before the end".into()),
            ));
        }
        dst.write_all(&data)
            .await
            .map_err(local_err("cannot write", local))?;
        offset += data.len() as u64;
    }
    dst.flush()
        .await
        .map_err(local_err("cannot write", local))?;
    // On the open file: no path is followed.
    dst.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
        .await
        .map_err(local_err("cannot chmod", local))
}
