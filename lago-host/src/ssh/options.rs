//! The tuning of the connection pool: timeouts, retry pauses, session and
//! SFTP limits.

use std::time::Duration;

/// Tuning of an [`SshPool`](super::SshPool). The defaults suit VMs on a local bridge.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Limit for one connection attempt: TCP connect, handshake and
    /// authentication. Default 10 s.
    pub connect_timeout: Duration,
    /// Limit for opening a channel on a pooled connection; past it the
    /// connection is considered dead and one new connection is tried.
    /// Default 5 s.
    pub channel_open_timeout: Duration,
    /// Concurrent channels per connection (OpenSSH's `MaxSessions` default is
    /// 10); further operations on the same VM wait. Default 8.
    pub max_sessions_per_connection: usize,
    /// SSH keepalive on idle pooled connections, so that a connection to a
    /// VM that went away is noticed and replaced. Default 15 s.
    pub keepalive_interval: Option<Duration>,
    /// Pause before the next `wait_for_ssh` attempt after a connection was
    /// refused or could not be made (cheap to retry). Default 50 ms.
    pub retry_delay: Duration,
    /// Pause before the next `wait_for_ssh` attempt after a failure past the
    /// TCP connect (handshake, authentication, `true` failing): each such
    /// attempt costs the still-booting VM a key exchange. Default 250 ms.
    pub handshake_retry_delay: Duration,
    /// How long `wait_for_ssh` keeps trying while the VM refuses every
    /// authentication method (the guest may still be installing the key, as
    /// cloud-init does right before sshd starts); past it the wait fails
    /// with [`SshError::Auth`](super::SshError::Auth) instead of spending its whole budget.
    /// Default 20 s.
    pub auth_refused_grace: Duration,
    /// Limit for each SFTP request. Default 30 s.
    pub sftp_request_timeout: Duration,
    /// The most entries (files, folders, links, and empty replies of the
    /// server) one SFTP download lists, over all its folders; past it the
    /// download fails (a guest's server can list a folder that never
    /// ends). Default 1,000,000.
    pub sftp_max_entries: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            connect_timeout: Duration::from_secs(10),
            channel_open_timeout: Duration::from_secs(5),
            max_sessions_per_connection: 8,
            keepalive_interval: Some(Duration::from_secs(15)),
            retry_delay: Duration::from_millis(50),
            handshake_retry_delay: Duration::from_millis(250),
            auth_refused_grace: Duration::from_secs(20),
            sftp_request_timeout: Duration::from_secs(30),
            sftp_max_entries: 1_000_000,
        }
    }
}
