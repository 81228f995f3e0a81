//! Text for the user's own OpenSSH client: `<prefix>/ssh_config` blocks and
//! known_hosts lines, so that `ssh -F <prefix>/ssh_config VM` verifies the
//! same host keys lago does.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

/// One known_hosts line for `host:port` and an OpenSSH public key line
/// (its comment dropped).
pub fn known_hosts_line(host: IpAddr, port: u16, public_key_line: &str) -> String {
    let mut fields = public_key_line.split_whitespace();
    let alg = fields.next().unwrap_or("");
    let b64 = fields.next().unwrap_or("");
    if port == 22 {
        format!("{host} {alg} {b64}")
    } else {
        format!("[{host}]:{port} {alg} {b64}")
    }
}

/// Quotes a value for ssh_config when it holds spaces or quotes.
fn cfg_value(v: &str) -> String {
    if v.is_empty() || v.contains([' ', '\t', '"']) {
        format!("\"{}\"", v.replace('"', ""))
    } else {
        v.to_string()
    }
}

/// A `Host` block of an ssh_config for one VM: connects to `host:port` as
/// `user` with `identity_file`, checks host keys strictly against
/// `known_hosts_file`, and never adds to the user's own known_hosts.
pub fn ssh_config_block(
    alias: &str,
    host: IpAddr,
    port: u16,
    user: &str,
    identity_file: Option<&Path>,
    known_hosts_file: &Path,
    proxy_jump: Option<&str>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Host {}", cfg_value(alias));
    let _ = writeln!(s, "    HostName {host}");
    let _ = writeln!(s, "    Port {port}");
    let _ = writeln!(s, "    User {}", cfg_value(user));
    if let Some(key) = identity_file {
        let _ = writeln!(s, "    IdentityFile {}", cfg_value(&key.to_string_lossy()));
        let _ = writeln!(s, "    IdentitiesOnly yes");
    }
    let _ = writeln!(
        s,
        "    UserKnownHostsFile {}",
        cfg_value(&known_hosts_file.to_string_lossy())
    );
    let _ = writeln!(s, "    GlobalKnownHostsFile /dev/null");
    let _ = writeln!(s, "    StrictHostKeyChecking yes");
    if let Some(j) = proxy_jump {
        let _ = writeln!(s, "    ProxyJump {}", cfg_value(j));
    }
    s
}

/// The end of a `ssh_config` whose blocks jump through hosts: with `-F`,
/// OpenSSH reads only that file (and hands it to the jump's `ssh`), so the
/// user's own settings for the jump hosts are included after lago's blocks.
pub const INCLUDE_USER_CONFIG: &str =
    "\n# The hosts VMs are reached through: your own settings for them.\nMatch all\n    Include ~/.ssh/config\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let ip: IpAddr = [192, 168, 200, 2].into();
        assert_eq!(
            known_hosts_line(ip, 22, "ssh-ed25519 AAAAC3 vm0@lago"),
            "192.168.200.2 ssh-ed25519 AAAAC3"
        );
        assert_eq!(
            known_hosts_line(ip, 2222, "ssh-ed25519 AAAAC3"),
            "[192.168.200.2]:2222 ssh-ed25519 AAAAC3"
        );
        let b = ssh_config_block(
            "vm0",
            ip,
            22,
            "root",
            Some(Path::new("/p/id rsa")),
            Path::new("/p/known_hosts"),
            Some("root@hv2:2222"),
        );
        assert!(b.ends_with("    ProxyJump root@hv2:2222\n"), "{b}");
        assert!(
            b.starts_with("Host vm0\n    HostName 192.168.200.2\n"),
            "{b}"
        );
        assert!(b.contains("    IdentityFile \"/p/id rsa\"\n"), "{b}");
        assert!(b.contains("StrictHostKeyChecking yes"), "{b}");
    }
}
