//! `copy-to-vm` and `copy-from-vm`: files and folders (recursively, modes
//! kept) over the SSH layer's SFTP, with errors that say which side lacks
//! what.
//!
//! As `scp -r`: when the destination is an existing folder, the source is
//! copied into it under its own name; otherwise it is created with the
//! destination's name.

use std::path::{Path, PathBuf};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;

use crate::ssh::{SshError, SshPool, SshTarget};

/// What copying can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The local source does not exist.
    #[error("local path {0} does not exist")]
    LocalMissing(PathBuf),

    /// The local destination's folder does not exist.
    #[error("local folder {0} does not exist (the copy's destination goes into it)")]
    LocalFolderMissing(PathBuf),

    /// The remote source does not exist.
    #[error("{path} does not exist in VM {vm}")]
    RemoteMissing { vm: String, path: String },

    /// The remote destination could not be created because its folder does
    /// not exist.
    #[error("cannot create {path} in VM {vm}: its folder does not exist")]
    RemoteFolderMissing { vm: String, path: String },

    /// Any other failure of the SSH layer.
    #[error(transparent)]
    Ssh(#[from] SshError),
}

impl CopyError {
    /// The error and its causes on one line.
    pub fn chain_string(&self) -> String {
        match self {
            CopyError::Ssh(e) => e.chain_string(),
            other => other.to_string(),
        }
    }

    /// Whether the user can fix it (a wrong path), as opposed to a failure
    /// of the connection or of the system.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, CopyError::Ssh(_))
    }
}

impl From<CopyError> for crate::error::Error {
    fn from(e: CopyError) -> Self {
        if e.is_user_error() {
            crate::error::Error::user(e.chain_string())
        } else {
            crate::error::Error::internal(e.chain_string())
        }
    }
}

/// The SFTP status code under an SSH-layer error, when it is one.
fn sftp_status(e: &SshError) -> Option<(&'static str, &str, StatusCode)> {
    match e {
        SshError::Sftp {
            op, path, source, ..
        } => match source.as_ref() {
            SftpError::Status(s) => Some((*op, path.as_str(), s.status_code)),
            _ => None,
        },
        _ => None,
    }
}

/// Copies a local file or folder into the VM at `remote`.
pub fn copy_to_vm(
    pool: &SshPool,
    target: &SshTarget,
    local: &Path,
    remote: &str,
) -> Result<(), CopyError> {
    if std::fs::symlink_metadata(local).is_err() {
        return Err(CopyError::LocalMissing(local.to_path_buf()));
    }
    pool.upload(target, local, remote)
        .map_err(|e| match sftp_status(&e) {
            Some(("create" | "mkdir", path, StatusCode::NoSuchFile)) => {
                CopyError::RemoteFolderMissing {
                    vm: target.name.clone(),
                    path: path.to_string(),
                }
            }
            _ => CopyError::Ssh(e),
        })
}

/// Copies a file or folder of the VM to `local`.
pub fn copy_from_vm(
    pool: &SshPool,
    target: &SshTarget,
    remote: &str,
    local: &Path,
) -> Result<(), CopyError> {
    if !local.is_dir() {
        let parent = match local.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(CopyError::LocalFolderMissing(parent));
        }
    }
    pool.download(target, remote, local)
        .map_err(|e| match sftp_status(&e) {
            Some(("stat" | "open", path, StatusCode::NoSuchFile)) if path == remote => {
                CopyError::RemoteMissing {
                    vm: target.name.clone(),
                    path: remote.to_string(),
                }
            }
            _ => CopyError::Ssh(e),
        })
}
