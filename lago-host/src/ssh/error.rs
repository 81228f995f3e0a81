//! The one error type of the SSH layer.
//!
//! Messages say what failed, on which VM and what was expected; the cause is
//! kept as the error's `source()` and not repeated in the message (print the
//! chain to see it). No message ever holds a password or key material; a
//! remote command is named by its program only (its arguments may hold
//! secrets).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the SSH layer can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// The TCP connection could not be made.
    #[error("cannot connect to VM {vm} at {addr}")]
    Connect {
        vm: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The TCP connection was made but the SSH handshake failed or the
    /// connection broke.
    #[error("SSH session with VM {vm} at {addr} failed")]
    Session {
        vm: String,
        addr: SocketAddr,
        #[source]
        source: Box<russh::Error>,
    },

    /// The server refused every authentication method lago tried.
    #[error("VM {vm} refused SSH authentication as user {user:?} (tried: {tried})")]
    Auth {
        vm: String,
        user: String,
        /// The methods tried, such as `public key /path/id_ed25519, password`.
        tried: String,
    },

    /// The server's host key is not the one lago expects.
    #[error(
        "the SSH host key of VM {vm} does not match the one recorded at init \
         (expected {expected_fingerprint}, the server presented {got_fingerprint}); \
         refusing to connect: the VM was replaced outside lago or someone is \
         intercepting the connection"
    )]
    HostKeyMismatch {
        vm: String,
        expected_fingerprint: String,
        got_fingerprint: String,
    },

    /// The server's host key is not one of those the guest printed on its
    /// serial console.
    #[error(
        "the SSH host key of VM {vm} ({got_fingerprint}) is not one of the keys \
         the VM printed on its console ({console}); refusing to connect: someone \
         may be intercepting the connection"
    )]
    ConsoleHostKeyMismatch {
        vm: String,
        got_fingerprint: String,
        console: PathBuf,
    },

    /// The template says the guest prints its host keys on the console, and
    /// it has not (yet): retried while the VM boots.
    #[error("VM {vm} has not printed its SSH host keys on its console ({console}) yet")]
    ConsoleHostKeyPending { vm: String, console: PathBuf },

    /// A pinned host key could not be parsed.
    #[error("the host key pinned for VM {vm} is not a valid OpenSSH public key line")]
    InvalidHostKey {
        vm: String,
        #[source]
        source: Box<russh::keys::ssh_key::Error>,
    },

    /// The known-hosts file of a `Learn` policy could not be read or written.
    #[error("cannot use the known-hosts file {path} for VM {vm}")]
    KnownHosts {
        vm: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The private key could not be read or parsed.
    #[error("cannot load the SSH private key {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: Box<russh::keys::Error>,
    },

    /// The private key file is accessible by other users (OpenSSH refuses
    /// such keys too).
    #[error(
        "the SSH private key {path} is accessible by others (mode {mode:04o}); \
         it must be readable by its owner only (chmod 600 {path})"
    )]
    KeyPermissions { path: PathBuf, mode: u32 },

    /// An operation did not finish in time.
    #[error("timed out after {after:.1?} on VM {vm}: {what}")]
    Timeout {
        vm: String,
        what: String,
        after: Duration,
    },

    /// Opening or using an SSH channel failed.
    #[error("SSH channel to VM {vm} failed: {what}")]
    Channel {
        vm: String,
        what: String,
        #[source]
        source: Option<Box<russh::Error>>,
    },

    /// An SFTP operation failed.
    #[error("SFTP {op} {path:?} on VM {vm} failed")]
    Sftp {
        vm: String,
        op: &'static str,
        path: String,
        #[source]
        source: Box<russh_sftp::client::error::Error>,
    },

    /// A local file operation failed.
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `wait_for_ssh` gave up; the last attempt's error is the source.
    #[error(
        "VM {vm} did not answer SSH: gave up after {tries} tries in {elapsed:.1?}; last error"
    )]
    NotReachable {
        vm: String,
        tries: u32,
        elapsed: Duration,
        #[source]
        last: Box<SshError>,
    },

    /// `wait_for_ssh` stopped early: what it watched (the VM's console)
    /// says the VM will not come up.
    #[error("stopped waiting for SSH on VM {vm}: {why}")]
    Abandoned { vm: String, why: String },

    /// The remote side answered with something lago cannot use.
    #[error("VM {vm}: {what}")]
    Remote { vm: String, what: String },
}

impl SshError {
    /// Whether retrying the same operation later may succeed (the VM may be
    /// still booting). Configuration and trust errors are not retryable.
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            SshError::HostKeyMismatch { .. }
                | SshError::ConsoleHostKeyMismatch { .. }
                | SshError::InvalidHostKey { .. }
                | SshError::KnownHosts { .. }
                | SshError::Key { .. }
                | SshError::KeyPermissions { .. }
                | SshError::Io { .. }
                | SshError::Abandoned { .. }
        )
    }

    /// The error and all its causes joined by `: `, for one-line messages.
    pub fn chain_string(&self) -> String {
        let mut s = self.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }
}
