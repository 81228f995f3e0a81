//! Client keys: loading with OpenSSH's permission rule, and generation.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;

use super::SshError;

/// Loads an unencrypted private key, refusing (as OpenSSH does) a key file
/// that group or others may access.
pub(crate) fn load_private_key(path: &Path) -> Result<PrivateKey, SshError> {
    let meta = std::fs::metadata(path).map_err(|source| SshError::Io {
        what: "cannot read the SSH private key",
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if mode & 0o077 != 0 && std::os::unix::fs::MetadataExt::uid(&meta) == uid {
        return Err(SshError::KeyPermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    russh::keys::load_secret_key(path, None).map_err(|source| SshError::Key {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// Generates an Ed25519 key pair, writes the private half in OpenSSH format
/// to `private_path` (mode 0600, replaced atomically) and returns the public
/// half as one OpenSSH line (`ssh-ed25519 AAAA... comment`).
pub fn generate_ed25519_key(private_path: &Path, comment: &str) -> Result<String, SshError> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    key.set_comment(comment);
    let encode_err = |e: russh::keys::ssh_key::Error| SshError::Key {
        path: private_path.to_path_buf(),
        source: Box::new(russh::keys::Error::from(e)),
    };
    let pem = key.to_openssh(LineEnding::LF).map_err(encode_err)?;
    let public = key.public_key().to_openssh().map_err(encode_err)?;
    write_private(private_path, pem.as_bytes()).map_err(|source| SshError::Io {
        what: "cannot write the SSH private key",
        path: private_path.to_path_buf(),
        source,
    })?;
    Ok(public)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_sibling(path);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `dir/.name.tmp.<pid>.<random>` next to `path`.
pub(crate) fn tmp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = format!(
        ".{name}.tmp.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    path.with_file_name(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_then_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id_ed25519");
        let public = generate_ed25519_key(&p, "lago@test").expect("generate");
        assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
        assert!(public.ends_with(" lago@test"), "{public}");
        let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let key = load_private_key(&p).expect("load");
        assert_eq!(
            key.public_key().to_openssh().expect("encode"),
            public,
            "the loaded key is the generated one"
        );
    }

    #[test]
    fn refuses_group_readable_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("id");
        generate_ed25519_key(&p, "x").expect("generate");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = load_private_key(&p).expect_err("must refuse");
        assert!(
            matches!(err, SshError::KeyPermissions { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
