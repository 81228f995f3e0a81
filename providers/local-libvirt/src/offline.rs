//! Offline bootstrap: for templates that read no seed (template metadata
//! `bootstrap: offline`, e.g. Lago-style images without cloud-init), what a
//! seed would carry is written into the VM's own overlay at init, as Lago's
//! `bootstrap` did with virt-sysprep:
//!
//! - the hostname (`/etc/hostname`, `/etc/hosts`);
//! - root's password (when the VM has one), hashed by libguestfs;
//! - the prefix's public key in `/root/.ssh/authorized_keys`;
//! - the host key lago generated at init (when the template's `ssh-host-key`
//!   is `offline`), as `/etc/ssh/ssh_host_<type>_key` (0600) and `.pub`.
//!
//! One `virt-customize` run per VM (the caller runs the VMs in parallel).
//! libguestfs edits the image inside its own appliance, whatever the file
//! system: a guest's symbolic links are never followed on the host.

use std::path::{Path, PathBuf};

use lago_plugin_api::spec::{EnvSpec, VmSpec};

use crate::disks::{missing_image, planned_path, virt_customize};
use crate::error::{ProviderError, Result};
use crate::seed::{write_private, SeedData};
use crate::tools::{run_logged, which};

/// Files written for one run and removed after it, whatever happens.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A host path as one `virt-customize` argument half (`SRC:DEST`,
/// `root:file:SRC`): a `:` in it would be read as the separator.
fn colon_free(path: &Path) -> Result<String> {
    let s = path.to_string_lossy().into_owned();
    if s.contains(':') {
        return Err(ProviderError::Spec(format!(
            "offline bootstrap: the path {s} contains ':', which virt-customize reads as a \
             separator: move the prefix to a path without ':'"
        )));
    }
    Ok(s)
}

/// The `virt-customize` options of `data`, with the scratch files they
/// read (written 0600 into `dir`).
fn options(
    vm: &VmSpec,
    data: &SeedData,
    pubkey: &Path,
    dir: &Path,
) -> Result<(Vec<String>, Scratch)> {
    let mut scratch = Scratch(Vec::new());
    let mut args = vec![
        "--no-network".to_string(),
        "--hostname".to_string(),
        data.hostname.clone(),
    ];
    if let Some(pw) = &data.root_password {
        let path = dir.join(format!(".{}-root-password", vm.name));
        scratch.0.push(path.clone());
        write_private(&path, format!("{pw}\n").as_bytes())?;
        args.push("--root-password".into());
        args.push(format!("file:{}", colon_free(&path)?));
    }
    args.push("--ssh-inject".into());
    args.push(format!("root:file:{}", colon_free(pubkey)?));
    if let Some((kind, private, public)) = &data.host_key {
        let key = format!("/etc/ssh/ssh_host_{kind}_key");
        let priv_path = dir.join(format!(".{}-host-key", vm.name));
        let pub_path = dir.join(format!(".{}-host-key.pub", vm.name));
        scratch.0.push(priv_path.clone());
        scratch.0.push(pub_path.clone());
        write_private(&priv_path, private.as_bytes())?;
        write_private(&pub_path, format!("{public}\n").as_bytes())?;
        args.extend([
            "--mkdir".into(),
            "/etc/ssh".into(),
            "--upload".into(),
            format!("{}:{key}", colon_free(&priv_path)?),
            "--chmod".into(),
            format!("0600:{key}"),
            "--upload".into(),
            format!("{}:{key}.pub", colon_free(&pub_path)?),
            "--chmod".into(),
            format!("0644:{key}.pub"),
        ]);
    }
    Ok((args, scratch))
}

/// Writes the VM's hostname, root password, the prefix's key and (when
/// lago kept one for it) its host key into the VM's first disk with
/// `virt-customize`; its output goes to the prefix's log.
///
/// Errors: `virt-customize` missing, a VM on another host (its disk is not
/// here), the disk or the prefix's keys missing, `virt-customize` failing.
pub fn bootstrap(env: &EnvSpec, vm: &VmSpec) -> Result<()> {
    if vm.host.is_some() {
        return Err(ProviderError::Spec(format!(
            "VM {}: its template is bootstrapped offline (metadata `bootstrap: offline`), \
             which lago does only for VMs on this host",
            vm.name
        )));
    }
    if which("virt-customize").is_none() {
        return Err(ProviderError::MissingTool(format!(
            "VM {}: its template reads no seed (metadata `bootstrap: offline`): lago writes \
             its hostname, password and keys into its disk with virt-customize, which is not \
             installed (Debian: apt-get install libguestfs-tools), or set `bootstrap: false`",
            vm.name
        )));
    }
    let disk = vm.disks.first().ok_or_else(|| {
        ProviderError::Spec(format!("VM {}: no disk to bootstrap offline", vm.name))
    })?;
    let path = planned_path(vm, disk)?;
    if !path.exists() {
        return Err(missing_image(vm, disk, path));
    }
    let data = SeedData::from_prefix(env, vm)?;
    let dir = env.prefix.images_dir();
    let (args, _scratch) = options(vm, &data, &env.prefix.ssh_pubkey_path(), &dir)?;
    let mut cmd = virt_customize(disk, path);
    cmd.args(args);
    run_logged(
        &mut cmd,
        &format!("bootstrapping VM {} offline with virt-customize", vm.name),
        Some(&env.prefix.log_path()),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(password: Option<&str>, host_key: bool) -> SeedData {
        SeedData {
            instance_id: "u-vm0".into(),
            hostname: "vm0".into(),
            authorized_keys: vec!["ssh-ed25519 AAAA lago".into()],
            root_password: password.map(str::to_string),
            host_key: host_key.then(|| {
                (
                    "ed25519".to_string(),
                    "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"
                        .to_string(),
                    "ssh-ed25519 BBBB root@vm0".to_string(),
                )
            }),
        }
    }

    fn vm() -> VmSpec {
        serde_json::from_value(serde_json::json!({
            "name": "vm0", "libvirt_name": "x-vm0", "memory": 256, "vcpu": 1,
            "nics": [], "disks": [], "mgmt_net": "m",
            "vm-provider": "local-libvirt", "vm-type": "default", "bootstrap": true
        }))
        .expect("vm spec")
    }

    #[test]
    fn options_carry_hostname_password_keys_through_private_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let pubkey = dir.path().join("id.pub");
        let (args, scratch) =
            options(&vm(), &data(Some("s3cret"), true), &pubkey, dir.path()).expect("options");
        let at = |flag: &str| args.iter().position(|a| a == flag).expect(flag);
        assert_eq!(args[at("--hostname") + 1], "vm0");
        let pw_file = args[at("--root-password") + 1]
            .strip_prefix("file:")
            .expect("file:");
        assert_eq!(std::fs::read_to_string(pw_file).expect("pw"), "s3cret\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pw_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!args.iter().any(|a| a.contains("s3cret")), "{args:?}");
        assert_eq!(
            args[at("--ssh-inject") + 1],
            format!("root:file:{}", pubkey.display())
        );
        assert!(args
            .iter()
            .any(|a| a.ends_with(":/etc/ssh/ssh_host_ed25519_key")));
        assert!(args.contains(&"0600:/etc/ssh/ssh_host_ed25519_key".to_string()));
        // The scratch files go with the run.
        let files = scratch.0.clone();
        assert_eq!(files.len(), 3);
        drop(scratch);
        assert!(files.iter().all(|f| !f.exists()));

        // No password, no host key: neither option.
        let (args, _s) = options(&vm(), &data(None, false), &pubkey, dir.path()).expect("options");
        assert!(!args
            .iter()
            .any(|a| a == "--root-password" || a == "--upload"));
    }

    #[test]
    fn a_colon_in_a_path_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = options(
            &vm(),
            &data(None, false),
            Path::new("/a:b/id.pub"),
            dir.path(),
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(err.contains("':'"), "{err}");
    }
}
