//! Host-key verification: a pinned key, or a known-hosts file that learns
//! the first key seen.

use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::Path;

use russh::keys::{HashAlg, PublicKey};

use super::keys::tmp_sibling;
use super::{HostKeyPolicy, SshError};

/// `SHA256:...` as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The fingerprint of one OpenSSH public key line.
pub fn fingerprint_of_line(line: &str) -> Option<String> {
    PublicKey::from_openssh(line.trim())
        .ok()
        .map(|k| fingerprint(&k))
}

/// known_hosts spelling of a host: `host` on port 22, `[host]:port` otherwise.
fn host_pattern(host: IpAddr, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Verifies `key` presented by `host:port` (VM `vm`) against `policy`.
pub(crate) fn verify(
    vm: &str,
    host: IpAddr,
    port: u16,
    policy: &HostKeyPolicy,
    key: &PublicKey,
) -> Result<(), SshError> {
    match policy {
        HostKeyPolicy::Pinned(line) => {
            let expected = PublicKey::from_openssh(line.trim()).map_err(|source| {
                SshError::InvalidHostKey {
                    vm: vm.to_string(),
                    source: Box::new(source),
                }
            })?;
            if expected.key_data() == key.key_data() {
                Ok(())
            } else {
                Err(SshError::HostKeyMismatch {
                    vm: vm.to_string(),
                    expected_fingerprint: fingerprint(&expected),
                    got_fingerprint: fingerprint(key),
                })
            }
        }
        HostKeyPolicy::Learn(path) => learn(vm, &host_pattern(host, port), path, key),
    }
}

fn learn(vm: &str, pattern: &str, path: &Path, key: &PublicKey) -> Result<(), SshError> {
    let io_err = |source| SshError::KnownHosts {
        vm: vm.to_string(),
        path: path.to_path_buf(),
        source,
    };
    // Serialise learners (threads and processes) on a sidecar lock file; the
    // known-hosts file itself is replaced by rename so it cannot be locked.
    let lock_path = path.with_file_name(format!(
        ".{}.lock",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err)?;
    lock.lock().map_err(io_err)?;

    let existing = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(e)),
    };
    let recorded = recorded_keys(&existing, pattern);
    if let Some(first) = recorded.first() {
        return if recorded.iter().any(|k| k.key_data() == key.key_data()) {
            Ok(())
        } else {
            Err(SshError::HostKeyMismatch {
                vm: vm.to_string(),
                expected_fingerprint: fingerprint(first),
                got_fingerprint: fingerprint(key),
            })
        };
    }

    let mut line = key
        .to_openssh()
        .map_err(|e| io_err(std::io::Error::other(e)))?;
    // Drop the server's comment: known_hosts lines carry none.
    if let Some((alg_b64, _comment)) = split_comment(&line) {
        line = alg_b64;
    }
    let mut content = existing;
    if !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content.extend_from_slice(format!("{pattern} {line}\n").as_bytes());
    write_atomically(path, &content).map_err(io_err)?;
    tracing::info!(vm, host = pattern, fingerprint = %fingerprint(key), "learned SSH host key");
    Ok(())
}

fn split_comment(line: &str) -> Option<(String, String)> {
    let mut it = line.splitn(3, ' ');
    let alg = it.next()?;
    let b64 = it.next()?;
    let comment = it.next()?;
    Some((format!("{alg} {b64}"), comment.to_string()))
}

/// Keys recorded for exactly `pattern` (plain, comma-separated host lists;
/// hashed entries are not written by lago and are ignored).
fn recorded_keys(content: &[u8], pattern: &str) -> Vec<PublicKey> {
    let mut keys = Vec::new();
    for line in content.lines().map_while(Result::ok) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(hosts), Some(alg), Some(b64)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !hosts.split(',').any(|h| h == pattern) {
            continue;
        }
        if let Ok(k) = PublicKey::from_openssh(&format!("{alg} {b64}")) {
            keys.push(k);
        }
    }
    keys
}

fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_sibling(path);
    let result = (|| {
        let mut f = std::fs::File::create_new(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::generate_ed25519_key;

    fn new_key(dir: &Path, name: &str) -> PublicKey {
        let line = generate_ed25519_key(&dir.join(name), "c").expect("generate");
        PublicKey::from_openssh(&line).expect("parse")
    }

    #[test]
    fn pinned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = new_key(dir.path(), "a");
        let b = new_key(dir.path(), "b");
        let ip: IpAddr = [10, 0, 0, 1].into();
        let pin = HostKeyPolicy::Pinned(a.to_openssh().expect("enc"));
        verify("vm", ip, 22, &pin, &a).expect("same key accepted");
        let err = verify("vm", ip, 22, &pin, &b).expect_err("other key refused");
        match &err {
            SshError::HostKeyMismatch {
                expected_fingerprint,
                got_fingerprint,
                ..
            } => {
                assert_eq!(expected_fingerprint, &fingerprint(&a));
                assert_eq!(got_fingerprint, &fingerprint(&b));
            }
            other => panic!("{other}"),
        }
        assert!(err
            .to_string()
            .contains("does not match the one recorded at init"));
        let bad = HostKeyPolicy::Pinned("ssh-ed25519 nonsense".into());
        assert!(matches!(
            verify("vm", ip, 22, &bad, &a),
            Err(SshError::InvalidHostKey { .. })
        ));
    }

    #[test]
    fn learn_records_then_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = new_key(dir.path(), "a");
        let b = new_key(dir.path(), "b");
        let kh = dir.path().join("sub/known_hosts");
        let policy = HostKeyPolicy::Learn(kh.clone());
        let ip: IpAddr = [10, 0, 0, 1].into();
        verify("vm0", ip, 2222, &policy, &a).expect("first key learned");
        let text = std::fs::read_to_string(&kh).expect("read");
        assert!(text.starts_with("[10.0.0.1]:2222 ssh-ed25519 "), "{text}");
        verify("vm0", ip, 2222, &policy, &a).expect("same key again");
        assert!(matches!(
            verify("vm0", ip, 2222, &policy, &b),
            Err(SshError::HostKeyMismatch { .. })
        ));
        // Another host in the same file learns its own key.
        verify("vm1", [10, 0, 0, 2].into(), 22, &policy, &b).expect("other host");
        let text = std::fs::read_to_string(&kh).expect("read");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("10.0.0.2 ")),
            "{text}"
        );
    }
}
