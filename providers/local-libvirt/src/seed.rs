//! The NoCloud bootstrap seed: an ISO9660 image labelled `cidata` holding
//! `meta-data` and `user-data`, what cloud-init (and the embedded template)
//! reads at boot.
//!
//! `meta-data`:
//! ```yaml
//! instance-id: "<prefix uuid>-<vm>"
//! local-hostname: "<vm>"
//! ```
//! `user-data`:
//! ```yaml
//! #cloud-config
//! disable_root: false
//! ssh_authorized_keys:
//!   - "<prefix public key>"
//! password: "<password>"         # when root-password is set (read by the
//!                                 # embedded template and cloud-init)
//! chpasswd:                       # when root-password is set
//!   list: "root:<password>"
//!   expire: false
//! ssh_pwauth: true                # when root-password is set
//! ssh_keys:                       # when the VM has a pinned host key
//!   ed25519_private: |
//!     -----BEGIN OPENSSH PRIVATE KEY-----
//!     ...
//!     -----END OPENSSH PRIVATE KEY-----
//!   ed25519_public: "ssh-ed25519 AAAA..."
//! ```
//! Every scalar is written double-quoted with JSON escapes (valid YAML), the
//! private key as a literal block.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use lago_plugin_api::spec::{EnvSpec, VmSpec};

use crate::error::{ProviderError, Result};
use crate::tools::{run, which};

/// A YAML double-quoted scalar (JSON string syntax is a subset of it).
pub fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// cloud-init's key type name (`ed25519`, `ecdsa`, `rsa`) of an OpenSSH
/// public key line.
pub fn host_key_type(public: &str) -> Option<&'static str> {
    let algo = public.split_whitespace().next()?;
    match algo {
        "ssh-ed25519" => Some("ed25519"),
        "ssh-rsa" => Some("rsa"),
        a if a.starts_with("ecdsa-sha2-") => Some("ecdsa"),
        _ => None,
    }
}

/// The seed's inputs, read from the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedData {
    pub instance_id: String,
    pub hostname: String,
    pub authorized_keys: Vec<String>,
    pub root_password: Option<String>,
    /// `(type, private OpenSSH key, public line)`.
    pub host_key: Option<(String, String, String)>,
}

impl SeedData {
    /// Reads the prefix's public key and the VM's pinned host key.
    pub fn from_prefix(env: &EnvSpec, vm: &VmSpec) -> Result<Self> {
        let pub_path = env.prefix.ssh_pubkey_path();
        let pubkey = std::fs::read_to_string(&pub_path)
            .map_err(|e| ProviderError::io("reading the prefix's SSH public key", &pub_path, e))?;
        let authorized_keys: Vec<String> = pubkey
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if authorized_keys.is_empty() {
            return Err(ProviderError::Spec(format!(
                "the prefix's SSH public key {} is empty",
                pub_path.display()
            )));
        }
        let host_key = match &vm.ssh_host_key {
            None => None,
            Some(public) => {
                let public = public.trim().to_string();
                let kind = host_key_type(&public).ok_or_else(|| {
                    ProviderError::Spec(format!(
                        "VM {}: pinned SSH host key has an unknown type: {public}",
                        vm.name
                    ))
                })?;
                let priv_path = env.prefix.host_key_path(&vm.name);
                let private = std::fs::read_to_string(&priv_path).map_err(|e| {
                    ProviderError::io(
                        format!("reading the SSH host key of VM {}", vm.name),
                        &priv_path,
                        e,
                    )
                })?;
                if !private.contains("PRIVATE KEY-----") {
                    return Err(ProviderError::Spec(format!(
                        "{} is not an OpenSSH private key",
                        priv_path.display()
                    )));
                }
                Some((kind.to_string(), private, public))
            }
        };
        Ok(SeedData {
            instance_id: format!("{}-{}", env.prefix.uuid, vm.name),
            hostname: vm.name.clone(),
            authorized_keys,
            root_password: vm.root_password.clone(),
            host_key,
        })
    }

    pub fn meta_data(&self) -> String {
        format!(
            "instance-id: {}\nlocal-hostname: {}\n",
            yaml_str(&self.instance_id),
            yaml_str(&self.hostname)
        )
    }

    pub fn user_data(&self) -> String {
        let mut s = String::from("#cloud-config\ndisable_root: false\nssh_authorized_keys:\n");
        for k in &self.authorized_keys {
            s.push_str(&format!("  - {}\n", yaml_str(k)));
        }
        if let Some(pw) = &self.root_password {
            s.push_str(&format!(
                "password: {}\nchpasswd:\n  list: {}\n  expire: false\nssh_pwauth: true\n",
                yaml_str(pw),
                yaml_str(&format!("root:{pw}"))
            ));
        }
        if let Some((kind, private, public)) = &self.host_key {
            s.push_str(&format!("ssh_keys:\n  {kind}_private: |\n"));
            for line in private.lines() {
                if line.is_empty() {
                    s.push('\n');
                } else {
                    s.push_str("    ");
                    s.push_str(line);
                    s.push('\n');
                }
            }
            s.push_str(&format!("  {kind}_public: {}\n", yaml_str(public)));
        }
        s
    }
}

/// Writes `dir/meta-data` and `dir/user-data` (mode 0600: it may hold a
/// private key and a password).
pub fn write_seed_dir(data: &SeedData, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ProviderError::io("creating the seed folder", dir, e))?;
    for (name, content) in [
        ("meta-data", data.meta_data()),
        ("user-data", data.user_data()),
    ] {
        let path = dir.join(name);
        write_private(&path, content.as_bytes())?;
    }
    Ok(())
}

pub(crate) fn write_private(path: &Path, content: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ProviderError::io("writing", path, e))?;
    f.write_all(content)
        .map_err(|e| ProviderError::io("writing", path, e))
}

/// Builds the ISO `out` from `dir` with
/// `xorriso -as mkisofs -quiet -V cidata -J -r -o OUT DIR`.
pub fn make_iso(dir: &Path, out: &Path) -> Result<()> {
    if which("xorriso").is_none() {
        return Err(ProviderError::MissingTool(
            "xorriso is not installed: it builds the bootstrap seed (run scripts/install-deps.sh)"
                .to_string(),
        ));
    }
    let mut cmd = Command::new("xorriso");
    cmd.args(["-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r", "-o"])
        .arg(out)
        .arg(dir);
    run(&mut cmd, "building the bootstrap seed")?;
    Ok(())
}

/// The seed image of a VM: `PREFIX/images/<vm>-seed.iso`.
pub fn seed_path(env: &EnvSpec, vm: &VmSpec) -> PathBuf {
    env.prefix
        .images_dir()
        .join(format!("{}-seed.iso", vm.name))
}

/// Builds `PREFIX/images/<vm>-seed.iso` for `vm` and returns its path. The
/// image is written beside its final name and renamed into place; its
/// staging folder is removed. Mode 0600.
pub fn build_seed(env: &EnvSpec, vm: &VmSpec) -> Result<PathBuf> {
    let data = SeedData::from_prefix(env, vm)?;
    let out = seed_path(env, vm);
    let images = env.prefix.images_dir();
    std::fs::create_dir_all(&images)
        .map_err(|e| ProviderError::io("creating the images folder", &images, e))?;
    let staging = images.join(format!(".{}-seed.d", vm.name));
    let tmp = images.join(format!(".{}-seed.iso.tmp", vm.name));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        write_seed_dir(&data, &staging)?;
        let _ = std::fs::remove_file(&tmp);
        make_iso(&staging, &tmp)?;
        set_mode(&tmp, 0o600)?;
        std::fs::rename(&tmp, &out)
            .map_err(|e| ProviderError::io("moving the seed into place", &out, e))
    })();
    let _ = std::fs::remove_dir_all(&staging);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| out)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ProviderError::io("setting the mode of", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> SeedData {
        SeedData {
            instance_id: "0123abcd-vm0".into(),
            hostname: "vm0".into(),
            authorized_keys: vec!["ssh-ed25519 AAAAC3Nza lago@prefix".into()],
            root_password: Some("se\"cret: #1".into()),
            host_key: Some((
                "ed25519".into(),
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\nNzaC1\n-----END OPENSSH PRIVATE KEY-----\n".into(),
                "ssh-ed25519 AAAAhost vm0".into(),
            )),
        }
    }

    #[test]
    fn meta_data_format() {
        assert_eq!(
            data().meta_data(),
            "instance-id: \"0123abcd-vm0\"\nlocal-hostname: \"vm0\"\n"
        );
    }

    #[test]
    fn user_data_format() {
        let ud = data().user_data();
        assert_eq!(
            ud,
            "#cloud-config\n\
             disable_root: false\n\
             ssh_authorized_keys:\n  - \"ssh-ed25519 AAAAC3Nza lago@prefix\"\n\
             password: \"se\\\"cret: #1\"\n\
             chpasswd:\n  list: \"root:se\\\"cret: #1\"\n  expire: false\n\
             ssh_pwauth: true\n\
             ssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    b3Blbn\n    NzaC1\n    -----END OPENSSH PRIVATE KEY-----\n  ed25519_public: \"ssh-ed25519 AAAAhost vm0\"\n"
        );
    }

    #[test]
    fn user_data_without_password_or_host_key() {
        let mut d = data();
        d.root_password = None;
        d.host_key = None;
        let ud = d.user_data();
        assert!(!ud.contains("chpasswd"));
        assert!(!ud.contains("ssh_pwauth"));
        assert!(!ud.contains("ssh_keys"));
    }

    #[test]
    fn key_types() {
        assert_eq!(host_key_type("ssh-ed25519 AAAA"), Some("ed25519"));
        assert_eq!(host_key_type("ecdsa-sha2-nistp256 AAAA"), Some("ecdsa"));
        assert_eq!(host_key_type("ssh-rsa AAAA x"), Some("rsa"));
        assert_eq!(host_key_type("ssh-dss AAAA"), None);
    }
}
