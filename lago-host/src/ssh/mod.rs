//! The SSH client layer: every interaction with a VM's insides goes through
//! here (no `ssh`, `scp` or `sshpass` processes).
//!
//! A synchronous API over one internal tokio runtime:
//! - [`SshTarget`] says where a VM is, how to log in ([`Auth`]) and how its
//!   host key is verified ([`HostKeyPolicy`]: pinned at init, or learned
//!   once and held).
//! - [`SshPool`] keeps one connection per VM and runs commands
//!   ([`SshPool::exec`], [`SshPool::exec_script`], [`SshPool::exec_stream`],
//!   whose stdout can be read as a [`std::io::Read`] via [`ExecStream::into_reader`]),
//!   waits for SSH to come up ([`SshPool::wait_for_ssh`]), opens an
//!   interactive shell ([`SshPool::interactive`]) and copies files and
//!   folders over SFTP ([`SshPool::upload`], [`SshPool::download`]).
//! - Errors are one [`SshError`] enum whose messages never hold secrets.

mod channel;
mod conn;
mod error;
mod exec;
mod hostkey;
mod interactive;
mod keys;
mod openssh;
mod options;
mod pool;
mod quote;
mod runtime;
mod sftp;
mod target;

pub use error::SshError;
pub use exec::{CommandStatus, OutputStream, MAX_OUTPUT};
pub use hostkey::{console_host_keys, fingerprint, fingerprint_of_line, learned_source};
pub use keys::generate_ed25519_key;
pub use openssh::{known_hosts_line, ssh_config_block, INCLUDE_USER_CONFIG};
pub use options::PoolOptions;
pub use pool::{ExecReader, ExecStream, SshPool, SshReady, StreamEvent, WaitWatch, WATCH_INTERVAL};
pub use quote::{join_argv, shell_quote};
pub use target::{Auth, HostKeyPolicy, SshDest, SshTarget};
