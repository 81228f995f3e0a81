//! A real SSH server for the SSH layer's tests: Debian's `dropbear`, on
//! 127.0.0.1 and a free port, started by the test and killed on drop.
//!
//! Dropbear reads root's `~/.ssh/authorized_keys` and `/etc/shadow`; to
//! touch neither, it runs in a private mount namespace (`unshare -m`) where
//! a temporary folder is bound over `/root/.ssh` and a copy of the shadow
//! file (root's password set to [`PASSWORD`]) over `/etc/shadow`.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lago::ssh::{generate_ed25519_key, Auth, HostKeyPolicy, SshTarget};
pub use lago_test_support::free_port;

pub const PASSWORD: &str = "lago-test-pw";
/// `openssl passwd -6 -salt lagotest lago-test-pw`
const PASSWORD_HASH: &str = "$6$lagotest$hqb7yI7vnFhMGCtvW5YNpQ5bdT8GiXnFOjQMB97wHMeMuxbz0otbSxwmiWa68XEGMmi6yPa1Bmo2mZ2X2.KyX/";

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Fails the test when dropbear is not installed.
#[macro_export]
macro_rules! require_dropbear {
    () => {
        assert!(
            $crate::ssh_support::have_dropbear(),
            "dropbear not installed: scripts/install-deps.sh installs dropbear-bin"
        );
    };
}

pub fn have_dropbear() -> bool {
    Path::new("/usr/sbin/dropbear").exists() && Path::new("/usr/bin/dropbearkey").exists()
}

/// Key material for one test: a client key and a server host key.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub client_key: PathBuf,
    pub client_pub: String,
    pub host_key: PathBuf,
    pub host_pub: String,
}

impl Keys {
    pub fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let client_key = dir.path().join("id_ed25519");
        let client_pub = generate_ed25519_key(&client_key, "lago-test").unwrap();
        let (host_key, host_pub) = new_host_key(dir.path(), "host_ed25519");
        Keys {
            dir,
            client_key,
            client_pub,
            host_key,
            host_pub,
        }
    }
}

/// A dropbear host key in `dir/name` and its OpenSSH public line.
pub fn new_host_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let st = Command::new("dropbearkey")
        .args(["-t", "ed25519", "-f"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "dropbearkey failed");
    let out = Command::new("dropbearkey")
        .arg("-y")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("ssh-ed25519 "))
        .expect("public key line")
        .to_string();
    (path, line)
}

/// What dropbear's mount namespace binds over root's files: a `.ssh`
/// holding `authorized_keys`, a copy of the shadow file whose root password
/// field is replaced, an empty `.bashrc`.
pub struct NamespaceFiles {
    pub dotssh: PathBuf,
    pub shadow: PathBuf,
    pub bashrc: PathBuf,
    /// The script's command binding `$4` over `/root/.bashrc` (with its
    /// `&&`), empty when root has none.
    pub bind_bashrc: &'static str,
}

impl NamespaceFiles {
    /// Writes them in `dir`; root's password field becomes `root_password`.
    pub fn new(dir: &Path, authorized_keys: &str, root_password: &str) -> NamespaceFiles {
        let dotssh = dir.join("dotssh");
        std::fs::create_dir(&dotssh).unwrap();
        std::fs::set_permissions(&dotssh, std::fs::Permissions::from_mode(0o700)).unwrap();
        let ak = dotssh.join("authorized_keys");
        std::fs::write(&ak, format!("{authorized_keys}\n")).unwrap();
        std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).unwrap();
        let shadow = dir.join("shadow");
        let real = std::fs::read_to_string("/etc/shadow").unwrap();
        let patched: String = real
            .lines()
            .map(|l| match l.strip_prefix("root:") {
                Some(rest) => {
                    let tail = rest.split_once(':').map(|(_, t)| t).unwrap_or("");
                    format!("root:{root_password}:{tail}\n")
                }
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&shadow, patched).unwrap();
        std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o640)).unwrap();
        if !Path::new("/root/.ssh").exists() {
            std::fs::create_dir(Path::new("/root/.ssh")).unwrap();
            std::fs::set_permissions("/root/.ssh", std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        // Root's ~/.bashrc here runs pyenv (~100 ms per command, since bash
        // reads it for SSH sessions): an empty one in the namespace keeps
        // the measurements about SSH.
        let bashrc = dir.join("bashrc");
        std::fs::write(&bashrc, "").unwrap();
        let bind_bashrc = if Path::new("/root/.bashrc").exists() {
            "mount --bind \"$4\" /root/.bashrc && "
        } else {
            ""
        };
        NamespaceFiles {
            dotssh,
            shadow,
            bashrc,
            bind_bashrc,
        }
    }
}

/// `name`: root on 127.0.0.1:`port`, logging in with `keys`' client key,
/// `keys`' host key pinned.
pub fn key_target(name: &str, port: u16, keys: &Keys) -> SshTarget {
    SshTarget {
        name: name.into(),
        host: LOCALHOST,
        port,
        user: "root".into(),
        auth: Auth::Key(keys.client_key.clone()),
        host_key: HostKeyPolicy::Pinned(keys.host_pub.clone()),
        jump: None,
    }
}

pub struct Server {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

pub struct ServerOptions<'a> {
    pub port: u16,
    pub host_key: &'a Path,
    pub authorized_keys: &'a str,
    pub allow_password: bool,
    /// Delay before dropbear starts listening.
    pub delay: Duration,
}

impl Server {
    /// Dropbear with `keys`' host key, accepting `keys`' client key.
    pub fn start(keys: &Keys) -> Server {
        Server::start_with(ServerOptions {
            port: free_port(),
            host_key: &keys.host_key,
            authorized_keys: &keys.client_pub,
            allow_password: false,
            delay: Duration::ZERO,
        })
    }

    pub fn start_with(o: ServerOptions<'_>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ns = NamespaceFiles::new(dir.path(), o.authorized_keys, PASSWORD_HASH);
        let bind_bashrc = ns.bind_bashrc;
        let log = dir.path().join("dropbear.log");
        let script = format!(
            "sleep {delay}; mount --bind \"$1\" /root/.ssh && mount --bind \"$2\" /etc/shadow && \
             {bind_bashrc}exec dropbear -F -E -m {pw} -p 127.0.0.1:{port} -r \"$3\"",
            delay = o.delay.as_secs_f64(),
            pw = if o.allow_password { "" } else { "-s" },
            port = o.port,
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(&ns.dotssh)
            .arg(&ns.shadow)
            .arg(o.host_key)
            .arg(&ns.bashrc)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().unwrap();
        let server = Server {
            child,
            port: o.port,
            log,
            _dir: dir,
        };
        if o.delay.is_zero() {
            server.wait_listening(Duration::from_secs(10));
        }
        server
    }

    pub fn wait_listening(&self, limit: Duration) {
        let start = Instant::now();
        while TcpStream::connect((LOCALHOST, self.port)).is_err() {
            assert!(
                start.elapsed() < limit,
                "dropbear did not listen on {}: {}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Authenticated connections dropbear accepted so far.
    pub fn connections(&self) -> usize {
        self.log_text().matches("auth succeeded").count()
    }

    pub fn target(&self, keys: &Keys) -> SshTarget {
        key_target(&format!("vm-{}", self.port), self.port, keys)
    }

    /// Kills the server and every process under it (session processes
    /// start their own sessions, so the process group is not enough).
    pub fn stop(&mut self) {
        let root = self.child.id() as i32;
        let mut pids = descendants(root);
        pids.push(root);
        for pid in pids {
            // SAFETY: signals processes this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// All descendants of `root`, from /proc.
fn descendants(root: i32) -> Vec<i32> {
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...
            let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
                continue;
            };
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
