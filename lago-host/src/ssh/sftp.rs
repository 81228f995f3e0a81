//! Copying files and folders over SFTP, keeping permission modes.
//!
//! Symbolic links are followed (as `scp -r` does); sockets, FIFOs and
//! devices are skipped with a warning. Files are streamed in 256 KiB chunks
//! (uploads keep several writes in flight).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;

use super::pool::{Inner, Start};
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
        SshError::Sftp {
            vm: self.target.name.clone(),
            op,
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    async fn stat(&self, path: &str) -> Result<Option<FileAttributes>, SshError> {
        match self.session.metadata(path).await {
            Ok(m) => Ok(Some(m)),
            Err(SftpError::Status(s))
                if s.status_code == russh_sftp::protocol::StatusCode::NoSuchFile =>
            {
                Ok(None)
            }
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

async fn open_sftp<'a>(inner: &Inner, target: &'a SshTarget) -> Result<Sftp<'a>, SshError> {
    let started = inner.start(target, Start::Subsystem("sftp"), None).await?;
    let (channel, permit) = (started.channel, started.permit);
    let config = russh_sftp::client::Config {
        request_timeout_secs: inner.opts.sftp_request_timeout.as_secs().max(1),
        ..Default::default()
    };
    let session = SftpSession::new_with_config(channel.into_stream(), config)
        .await
        .map_err(|source| SshError::Sftp {
            vm: target.name.clone(),
            op: "session start (is an SFTP server installed in the VM?)",
            path: String::new(),
            source: Box::new(source),
        })?;
    Ok(Sftp {
        target,
        session,
        _permit: permit,
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

pub(crate) async fn upload(
    inner: &Inner,
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
    let sftp = open_sftp(inner, target).await?;
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

pub(crate) async fn download(
    inner: &Inner,
    target: &SshTarget,
    remote: &str,
    local: &Path,
) -> Result<(), SshError> {
    let sftp = open_sftp(inner, target).await?;
    let attrs = sftp
        .session
        .metadata(remote)
        .await
        .map_err(|e| sftp.err("stat", remote, e))?;
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
        let _ = sftp.session.close().await;
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
        match tokio::fs::metadata(&ldir).await {
            Ok(m) if m.is_dir() => {}
            _ => tokio::fs::create_dir(&ldir)
                .await
                .map_err(local_err("cannot create", &ldir))?,
        }
        tokio::fs::set_permissions(&ldir, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(local_err("cannot chmod", &ldir))?;
        dir_modes.push((ldir.clone(), mode));
        let mut entries: Vec<_> = sftp
            .session
            .read_dir(rdir.clone())
            .await
            .map_err(|e| sftp.err("list", &rdir, e))?
            .collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let name = e.file_name();
            let rpath = remote_join(&rdir, &name);
            let lpath = ldir.join(&name);
            let mut m = e.metadata();
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
        tokio::fs::set_permissions(ldir, std::fs::Permissions::from_mode(mode & 0o7777))
            .await
            .map_err(local_err("cannot chmod", ldir))?;
    }
    let _ = sftp.session.close().await;
    Ok(())
}

async fn download_file(
    sftp: &Sftp<'_>,
    remote: &str,
    local: &Path,
    mode: u32,
) -> Result<(), SshError> {
    let mut src = sftp
        .session
        .open(remote)
        .await
        .map_err(|e| sftp.err("open", remote, e))?;
    let mut dst = tokio::fs::File::create(local)
        .await
        .map_err(local_err("cannot create", local))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src
            .read(&mut buf)
            .await
            .map_err(|e| sftp.err("read", remote, e.into()))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .await
            .map_err(local_err("cannot write", local))?;
    }
    dst.flush()
        .await
        .map_err(local_err("cannot write", local))?;
    drop(dst);
    let _ = src.shutdown().await;
    tokio::fs::set_permissions(local, std::fs::Permissions::from_mode(mode & 0o7777))
        .await
        .map_err(local_err("cannot chmod", local))
}
