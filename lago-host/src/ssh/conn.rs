//! Establishing one authenticated SSH connection.

use std::net::IpAddr;
use std::sync::Arc;

use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use super::hostkey;
use super::keys::load_private_key;
use super::{Auth, HostKeyPolicy, SshDest, SshError, SshTarget};

/// The russh event handler of one connection: verifies the host key.
pub(crate) struct Client {
    vm: String,
    host: IpAddr,
    port: u16,
    policy: HostKeyPolicy,
}

/// The handler's error: either russh's own or our host-key verdict.
#[derive(Debug)]
pub(crate) enum ClientError {
    Russh(russh::Error),
    HostKey(SshError),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Russh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone())
            }
        };
        hostkey::verify(&self.vm, self.host, self.port, &self.policy, &key)
            .map(|()| true)
            .map_err(ClientError::HostKey)
    }
}

pub(crate) type SshHandle = Handle<Client>;

/// The russh client configuration lago uses.
pub(crate) fn client_config(keepalive: Option<std::time::Duration>) -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: keepalive,
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    })
}

/// TCP connect, handshake with host-key verification, authentication.
pub(crate) async fn connect(
    target: &SshTarget,
    config: Arc<client::Config>,
) -> Result<SshHandle, SshError> {
    let addr = target.addr();
    let handler = Client {
        vm: target.name.clone(),
        host: target.host,
        port: target.port,
        policy: target.host_key.clone(),
    };
    let handshake = match &target.jump {
        None => {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|source| SshError::Connect {
                    vm: target.name.clone(),
                    addr,
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            client::connect_stream(config, tcp, handler).await
        }
        Some(jump) => {
            let stream = JumpStream::open(jump, addr).map_err(|source| SshError::Connect {
                vm: target.name.clone(),
                addr,
                source,
            })?;
            client::connect_stream(config, stream, handler).await
        }
    };
    let mut handle = handshake.map_err(|e| match e {
        ClientError::HostKey(e) => e,
        ClientError::Russh(source) => session_error(target, source),
    })?;
    authenticate(&mut handle, target).await?;
    tracing::debug!(vm = %target.name, %addr, user = %target.user, "SSH connected");
    Ok(handle)
}

/// The byte stream of `ssh -W VM:PORT JUMP`: OpenSSH connects to the jump
/// host with the user's configuration (keys, agent, known hosts; never a
/// prompt) and forwards its stdin/stdout to the VM's SSH port, as
/// `ProxyJump` does. The `ssh` process ends with the stream.
struct JumpStream {
    _child: tokio::process::Child,
    rd: tokio::process::ChildStdout,
    wr: tokio::process::ChildStdin,
}

impl JumpStream {
    fn open(jump: &SshDest, to: std::net::SocketAddr) -> std::io::Result<JumpStream> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-W"])
            .arg(match to {
                std::net::SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
                std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
            })
            .args(jump.ssh_args())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let (Some(rd), Some(wr)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(std::io::Error::other("ssh -W without pipes"));
        };
        Ok(JumpStream {
            _child: child,
            rd,
            wr,
        })
    }
}

impl tokio::io::AsyncRead for JumpStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.rd).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for JumpStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.wr).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.wr).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.wr).poll_shutdown(cx)
    }
}

pub(crate) fn session_error(target: &SshTarget, source: russh::Error) -> SshError {
    match source {
        russh::Error::IO(source) => SshError::Connect {
            vm: target.name.clone(),
            addr: target.addr(),
            source,
        },
        source => SshError::Session {
            vm: target.name.clone(),
            addr: target.addr(),
            source: Box::new(source),
        },
    }
}

async fn authenticate(handle: &mut SshHandle, target: &SshTarget) -> Result<(), SshError> {
    let mut tried = Vec::new();
    let (key, password) = match &target.auth {
        Auth::Key(k) => (Some((k, true)), None),
        Auth::Password(p) => (None, Some(p)),
        Auth::KeyOrPassword { key, password } => (Some((key, false)), Some(password)),
    };
    if let Some((path, required)) = key {
        if required || path.exists() {
            let key = load_private_key(path)?;
            let hash = if key.algorithm().is_rsa() {
                handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| session_error(target, e))?
                    .flatten()
            } else {
                None
            };
            let res = handle
                .authenticate_publickey(
                    target.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| session_error(target, e))?;
            if res.success() {
                return Ok(());
            }
            tried.push(format!("public key {}", path.display()));
        } else {
            tracing::debug!(vm = %target.name, key = %path.display(), "no key file; trying the password");
        }
    }
    if let Some(password) = password {
        let res = handle
            .authenticate_password(target.user.clone(), password.clone())
            .await
            .map_err(|e| session_error(target, e))?;
        if res.success() {
            return Ok(());
        }
        tried.push("password".to_string());
    }
    Err(SshError::Auth {
        vm: target.name.clone(),
        user: target.user.clone(),
        tried: tried.join(", "),
    })
}
