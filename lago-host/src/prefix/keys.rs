//! SSH key pairs generated in Rust (no `ssh-keygen` process): ed25519,
//! private half in OpenSSH format with mode 0600, public half one line.

use std::path::Path;

use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;

/// A generated key pair, both halves in OpenSSH text.
pub struct KeyPair {
    pub private_openssh: String,
    pub public_openssh: String,
}

/// A new ed25519 key pair with `comment`.
pub fn generate(comment: &str) -> Result<KeyPair, String> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let kp = Ed25519Keypair::from_seed(&seed);
    seed.fill(0);
    let mut key = PrivateKey::from(kp);
    key.set_comment(comment);
    let private_openssh = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| format!("cannot encode the private key: {e}"))?
        .to_string();
    let public_openssh = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    Ok(KeyPair {
        private_openssh,
        public_openssh,
    })
}

/// The user's own private key at `path` (`lago init --ssh-key`, Lago's
/// `ssh_key`): its text as written, checked to be an unencrypted OpenSSH
/// or PEM private key, and its public half. Errors say which and where.
pub fn from_file(path: &Path) -> Result<KeyPair, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the SSH key {}: {e}", path.display()))?;
    let key = russh::keys::decode_secret_key(&text, None).map_err(|e| {
        format!(
            "{} is not a readable private key ({e}); expected an unencrypted OpenSSH or PEM private key",
            path.display()
        )
    })?;
    let public_openssh = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("cannot encode the public half of {}: {e}", path.display()))?;
    Ok(KeyPair {
        private_openssh: text,
        public_openssh,
    })
}

/// Write a key pair: `path` (0600) and `path.pub` (0644), atomically and
/// durably.
pub fn write(path: &Path, kp: &KeyPair) -> std::io::Result<()> {
    crate::files::write_atomic(path, kp.private_openssh.as_bytes(), Some(0o600))?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let mut line = kp.public_openssh.clone();
    line.push('\n');
    crate::files::write_atomic(Path::new(&pub_path), line.as_bytes(), Some(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_openssh_ed25519() {
        let t = tempfile::tempdir().expect("tmp");
        let kp = generate("lago@test").expect("gen");
        assert!(kp
            .private_openssh
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(kp.public_openssh.starts_with("ssh-ed25519 "));
        assert!(kp.public_openssh.ends_with(" lago@test"));
        let p = t.path().join("id_ed25519");
        write(&p, &kp).expect("write");
        let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // It reads back as a key.
        let back =
            russh::keys::decode_secret_key(&std::fs::read_to_string(&p).expect("read"), None)
                .expect("decode");
        assert_eq!(
            back.public_key().to_openssh().expect("pub"),
            kp.public_openssh
        );
        assert_ne!(
            generate("x").expect("gen").public_openssh,
            kp.public_openssh
        );
    }
}
