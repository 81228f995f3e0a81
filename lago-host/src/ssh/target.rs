//! Where and how to reach one VM over SSH.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub use lago_plugin_api::spec::SshDest;

/// One VM's SSH endpoint, credentials and host-key policy.
///
/// Equal targets share one pooled connection in an [`SshPool`](super::SshPool).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SshTarget {
    /// The VM's name, used in messages only.
    pub name: String,
    pub host: IpAddr,
    pub port: u16,
    pub user: String,
    pub auth: Auth,
    pub host_key: HostKeyPolicy,
    /// The host to jump through (a VM on another libvirt host): the SSH
    /// connection to the VM is carried by `ssh -W VM:PORT JUMP`, OpenSSH
    /// with the user's own configuration, keys and known hosts, as
    /// `ProxyJump` does. None: straight to the VM.
    pub jump: Option<SshDest>,
}

impl SshTarget {
    /// The socket address connected to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// How to authenticate. `Debug` never shows a password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Auth {
    /// A private key file (OpenSSH or PEM format, unencrypted, mode 0600 or
    /// stricter).
    Key(PathBuf),
    /// A password.
    Password(String),
    /// The key when the server accepts it, otherwise the password (Lago's
    /// behaviour). A missing key file is skipped; a key file readable by
    /// others is still refused.
    KeyOrPassword { key: PathBuf, password: String },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Key(p) => f.debug_tuple("Key").field(p).finish(),
            Auth::Password(_) => f.write_str("Password(<redacted>)"),
            Auth::KeyOrPassword { key, .. } => f
                .debug_struct("KeyOrPassword")
                .field("key", key)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// How the server's host key is verified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostKeyPolicy {
    /// The server must present exactly this key: one OpenSSH public key line
    /// (`ssh-ed25519 AAAA... [comment]`), as generated at `init`.
    Pinned(String),
    /// A known_hosts-format file: the first key seen for `[host]:port` is
    /// recorded (atomically) and required from then on.
    Learn(PathBuf),
    /// Learn into `known_hosts` as [`HostKeyPolicy::Learn`]: the key lago
    /// offered in the VM's seed (`seeded`, one OpenSSH public key line) when
    /// the VM presents it (recorded as pinned); else only a key the guest
    /// printed on its serial console (`console`, the log file of the VM's
    /// serial port) in cloud-init's `-----BEGIN SSH HOST KEY KEYS-----`
    /// block: the console does not travel over the VM network, so a key
    /// from there is not taken on trust. Without such a block the first key
    /// seen is taken, unless `required`, in which case the connection is
    /// retried until the block shows up (the template said it prints one).
    Console {
        known_hosts: PathBuf,
        console: PathBuf,
        required: bool,
        seeded: Option<String>,
    },
}
