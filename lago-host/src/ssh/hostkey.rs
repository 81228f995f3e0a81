//! Host-key verification: a pinned key, or a known-hosts file that learns
//! the key lago offered in the seed, the key the guest printed on its
//! serial console, or the first key seen.
//!
//! Each learned line carries a comment saying where the key came from
//! (`lago:seed`, `lago:console` or `lago:first-seen`), which `lago status`
//! shows.

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
        HostKeyPolicy::Learn(path) => learn(vm, &host_pattern(host, port), path, key, None),
        HostKeyPolicy::Console {
            known_hosts,
            console,
            required,
            seeded,
        } => {
            let seeded = match seeded {
                Some(line) => Some(PublicKey::from_openssh(line.trim()).map_err(|source| {
                    SshError::InvalidHostKey {
                        vm: vm.to_string(),
                        source: Box::new(source),
                    }
                })?),
                None => None,
            };
            learn(
                vm,
                &host_pattern(host, port),
                known_hosts,
                key,
                Some(Fallbacks {
                    seeded: seeded.as_ref(),
                    console,
                    required: *required,
                }),
            )
        }
    }
}

/// The comment of a known_hosts line holding the key lago put in the
/// VM's seed (the VM presented it).
pub const SOURCE_SEED: &str = "lago:seed";
/// The comment of a known_hosts line lago learned from the console.
pub const SOURCE_CONSOLE: &str = "lago:console";
/// The comment of a known_hosts line lago learned from the first connection.
pub const SOURCE_FIRST_SEEN: &str = "lago:first-seen";

/// How much of a console log is searched for the host-key block: its end
/// (a guest can print without bound; the block comes late in a boot).
const CONSOLE_TAIL_BYTES: u64 = 1024 * 1024;

/// The public keys of the last complete cloud-init host-key block in the
/// console log at `path` (`None` when there is no such block). The log is
/// the guest's output: only lines that parse as OpenSSH public keys count.
pub fn console_host_keys(path: &Path) -> std::io::Result<Option<Vec<PublicKey>>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let bytes = crate::sanitize::read_end(&mut f, CONSOLE_TAIL_BYTES)?;
    Ok(parse_console_keys(&String::from_utf8_lossy(&bytes)))
}

fn parse_console_keys(text: &str) -> Option<Vec<PublicKey>> {
    const BEGIN: &str = "-----BEGIN SSH HOST KEY KEYS-----";
    const END: &str = "-----END SSH HOST KEY KEYS-----";
    let mut found = None;
    let mut current: Option<Vec<PublicKey>> = None;
    for line in text.lines() {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c.is_control());
        if line.ends_with(BEGIN) {
            current = Some(Vec::new());
        } else if line.ends_with(END) {
            if let Some(keys) = current.take() {
                found = Some(keys);
            }
        } else if let Some(keys) = current.as_mut() {
            let mut it = line.split_whitespace();
            if let (Some(alg), Some(b64)) = (it.next(), it.next()) {
                if let Ok(k) = PublicKey::from_openssh(&format!("{alg} {b64}")) {
                    keys.push(k);
                }
            }
        }
    }
    found
}

/// Where a key not recorded yet may come from, in this order: the key
/// lago offered in the seed, the console's block (waited for when
/// `required`), the first key seen.
struct Fallbacks<'a> {
    seeded: Option<&'a PublicKey>,
    console: &'a Path,
    required: bool,
}

fn learn(
    vm: &str,
    pattern: &str,
    path: &Path,
    key: &PublicKey,
    fallbacks: Option<Fallbacks<'_>>,
) -> Result<(), SshError> {
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

    let source = match fallbacks {
        None => SOURCE_FIRST_SEEN,
        Some(Fallbacks {
            seeded: Some(seeded),
            ..
        }) if seeded.key_data() == key.key_data() => SOURCE_SEED,
        Some(Fallbacks {
            console, required, ..
        }) => {
            let printed = console_host_keys(console).map_err(|source| SshError::KnownHosts {
                vm: vm.to_string(),
                path: console.to_path_buf(),
                source,
            })?;
            match printed {
                Some(keys) if keys.iter().any(|k| k.key_data() == key.key_data()) => SOURCE_CONSOLE,
                Some(_) => {
                    return Err(SshError::ConsoleHostKeyMismatch {
                        vm: vm.to_string(),
                        got_fingerprint: fingerprint(key),
                        console: console.to_path_buf(),
                    })
                }
                None if required => {
                    return Err(SshError::ConsoleHostKeyPending {
                        vm: vm.to_string(),
                        console: console.to_path_buf(),
                    })
                }
                None => SOURCE_FIRST_SEEN,
            }
        }
    };

    let mut line = key
        .to_openssh()
        .map_err(|e| io_err(std::io::Error::other(e)))?;
    // Replace the server's comment by where lago got the key from.
    if let Some((alg_b64, _comment)) = split_comment(&line) {
        line = alg_b64;
    }
    let mut content = existing;
    if !content.is_empty() && !content.ends_with(b"\n") {
        content.push(b'\n');
    }
    content.extend_from_slice(format!("{pattern} {line} {source}\n").as_bytes());
    write_atomically(path, &content).map_err(io_err)?;
    tracing::info!(vm, host = pattern, fingerprint = %fingerprint(key), source, "learned SSH host key");
    Ok(())
}

/// Where the key recorded for `host` (port 22) in the known_hosts file at
/// `path` came from: `Some("pinned")` (the key lago put in the seed),
/// `Some("console")`, `Some("learned")` (first seen, or a line lago did not
/// mark), or `None` when no key is recorded yet.
pub fn learned_source(path: &Path, host: IpAddr) -> Option<&'static str> {
    let content = std::fs::read(path).ok()?;
    let pattern = host_pattern(host, 22);
    content
        .lines()
        .map_while(Result::ok)
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|h| h.split(',').any(|h| h == pattern))
        })
        .map(|l| match l.split_whitespace().nth(3) {
            Some(SOURCE_SEED) => "pinned",
            Some(SOURCE_CONSOLE) => "console",
            _ => "learned",
        })
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

    fn line_of(k: &PublicKey) -> String {
        let l = k.to_openssh().expect("enc");
        l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn console_block_is_parsed_from_hostile_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = new_key(dir.path(), "a");
        let b = new_key(dir.path(), "b");
        // An older block, noise, escape sequences, CRs: the last complete
        // block counts; lines that are not keys are ignored.
        let text = format!(
            "boot\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n{}\r\n-----END SSH HOST KEY KEYS-----\r\n\
             \x1b[0m noise\n[  1.0] -----BEGIN SSH HOST KEY KEYS-----\n{} root@vm\nnot a key\n\
             -----END SSH HOST KEY KEYS-----\n-----BEGIN SSH HOST KEY KEYS-----\n{}\n",
            line_of(&a),
            line_of(&b),
            line_of(&a),
        );
        let keys = parse_console_keys(&text).expect("a block");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key_data(), b.key_data());
        assert!(parse_console_keys("no block here\n").is_none());
        assert!(parse_console_keys("-----BEGIN SSH HOST KEY KEYS-----\nunfinished\n").is_none());
    }

    #[test]
    fn console_policy_learns_only_printed_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = new_key(dir.path(), "a");
        let b = new_key(dir.path(), "b");
        let console = dir.path().join("vm0.console.log");
        let kh = dir.path().join("known_hosts");
        let ip: IpAddr = [10, 0, 0, 1].into();
        let policy = |required| HostKeyPolicy::Console {
            known_hosts: kh.clone(),
            console: console.clone(),
            required,
            seeded: None,
        };

        // Required but not printed yet: retryable, nothing recorded.
        let err = verify("vm0", ip, 22, &policy(true), &a).expect_err("pending");
        assert!(
            matches!(err, SshError::ConsoleHostKeyPending { .. }),
            "{err}"
        );
        assert!(err.is_transient());
        assert!(!kh.exists());

        // Printed: another key is refused for good, the printed one learned.
        std::fs::write(
            &console,
            format!(
                "-----BEGIN SSH HOST KEY KEYS-----\n{}\n-----END SSH HOST KEY KEYS-----\n",
                line_of(&a)
            ),
        )
        .expect("console");
        let err = verify("vm0", ip, 22, &policy(true), &b).expect_err("not printed");
        assert!(
            matches!(err, SshError::ConsoleHostKeyMismatch { .. }),
            "{err}"
        );
        assert!(!err.is_transient());
        verify("vm0", ip, 22, &policy(true), &a).expect("printed key");
        assert_eq!(learned_source(&kh, ip), Some("console"));
        // From then on the recorded key holds, whatever the console says.
        std::fs::write(&console, "").expect("console");
        verify("vm0", ip, 22, &policy(true), &a).expect("recorded key");
        assert!(matches!(
            verify("vm0", ip, 22, &policy(false), &b),
            Err(SshError::HostKeyMismatch { .. })
        ));

        // Not required, nothing printed: the first key seen.
        let ip2: IpAddr = [10, 0, 0, 2].into();
        verify("vm1", ip2, 22, &policy(false), &b).expect("first seen");
        assert_eq!(learned_source(&kh, ip2), Some("learned"));
        assert_eq!(learned_source(&kh, [10, 0, 0, 3].into()), None);
    }

    #[test]
    fn seeded_key_is_pinned_else_console_then_first_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = new_key(dir.path(), "seed");
        let other = new_key(dir.path(), "other");
        let console = dir.path().join("vm0.console.log");
        let kh = dir.path().join("known_hosts");
        let policy = HostKeyPolicy::Console {
            known_hosts: kh.clone(),
            console: console.clone(),
            required: false,
            seeded: Some(seed.to_openssh().expect("enc")),
        };
        // The VM presents the seed's key: recorded as pinned.
        let ip: IpAddr = [10, 0, 0, 1].into();
        verify("vm0", ip, 22, &policy, &seed).expect("seed key");
        assert_eq!(learned_source(&kh, ip), Some("pinned"));
        assert!(matches!(
            verify("vm0", ip, 22, &policy, &other),
            Err(SshError::HostKeyMismatch { .. })
        ));
        // A VM that ignored the seed: its console block, else first seen.
        let ip2: IpAddr = [10, 0, 0, 2].into();
        std::fs::write(
            &console,
            format!(
                "-----BEGIN SSH HOST KEY KEYS-----\n{}\n-----END SSH HOST KEY KEYS-----\n",
                line_of(&other)
            ),
        )
        .expect("console");
        verify("vm1", ip2, 22, &policy, &other).expect("console key");
        assert_eq!(learned_source(&kh, ip2), Some("console"));
        std::fs::write(&console, "").expect("console");
        let ip3: IpAddr = [10, 0, 0, 3].into();
        verify("vm2", ip3, 22, &policy, &other).expect("first seen");
        assert_eq!(learned_source(&kh, ip3), Some("learned"));
        // A seeded key that does not parse is refused, not ignored.
        let bad = HostKeyPolicy::Console {
            known_hosts: kh.clone(),
            console,
            required: false,
            seeded: Some("ssh-ed25519 nonsense".into()),
        };
        assert!(matches!(
            verify("vm3", [10, 0, 0, 4].into(), 22, &bad, &seed),
            Err(SshError::InvalidHostKey { .. })
        ));
    }
}
