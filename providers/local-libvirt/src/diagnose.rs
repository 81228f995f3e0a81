//! Failures a new user of the system's libvirtd meets, turned into errors
//! that say what to do (docs/install.md, "As a normal user"):
//!
//! - the libvirt socket refuses them (not in group `libvirt`);
//! - libvirtd is not running (no socket, or nobody listening on it);
//! - QEMU, running as libvirt's QEMU user (`user` in qemu.conf;
//!   `libvirt-qemu` on Debian), cannot open an image of the prefix: the error
//!   names the file and that user (read from the host's capabilities, where
//!   libvirt reports the DAC label it gives QEMU, `+UID:+GID`).
//!
//! Only libvirt's message text tells these apart (libvirt reports all of
//! them as VIR_ERR_SYSTEM_ERROR / VIR_ERR_INTERNAL_ERROR with the errno's
//! text), so anything not recognised stays the plain libvirt error.

use virt::connect::Connect;

use crate::error::ProviderError;

/// The error of opening `url` (`what`: "connecting to libvirt at URL").
pub fn connect_error(what: String, e: virt::error::Error) -> ProviderError {
    let msg = e.message();
    let socket = msg.contains("connect socket") || msg.contains("libvirt-sock");
    let hint = if socket && msg.contains("Permission denied") {
        Some(format!(
            "user {} may not use libvirtd's socket: add it to group libvirt \
             (`sudo adduser {0} libvirt`, then log in again; `id` lists your groups)",
            current_user()
        ))
    } else if socket
        && (msg.contains("No such file or directory") || msg.contains("Connection refused"))
    {
        Some(
            "libvirtd is not running: install and start it (`sudo apt-get install \
             libvirt-daemon-system`, `sudo systemctl start libvirtd`)"
                .to_string(),
        )
    } else {
        None
    };
    match hint {
        Some(hint) => ProviderError::Setup {
            what,
            hint,
            source: e,
        },
        None => ProviderError::libvirt(what, e),
    }
}

/// The error of starting a domain (`what`: "starting VM ..."): when QEMU
/// could not open a file for lack of permission, names the file and the
/// user QEMU runs as.
pub fn start_error(conn: &Connect, what: String, e: virt::error::Error) -> ProviderError {
    let msg = e.message();
    let Some(path) = denied_path(msg) else {
        return ProviderError::libvirt(what, e);
    };
    let uid = conn.capabilities().ok().and_then(|caps| dac_uid(&caps));
    let (qemu_user, acl_user) = match uid {
        Some(uid) => {
            let name = user_name(uid);
            // setfacl takes a numeric uid when the name is unknown here
            let acl = if name == format!("uid {uid}") {
                uid.to_string()
            } else {
                name.clone()
            };
            (format!("{name} (uid {uid}, qemu.conf `user`)"), acl)
        }
        None => (
            "libvirt's QEMU user (qemu.conf `user`)".to_string(),
            "libvirt-qemu".to_string(),
        ),
    };
    ProviderError::Setup {
        what,
        hint: format!(
            "QEMU runs as {qemu_user} and cannot open {path}: every folder above it must let \
             that user through, e.g. `chmod o+x` on your home folder or \
             `setfacl -m u:{acl_user}:x ~` (see /usr/share/doc/lago/install.md)"
        ),
        source: e,
    }
}

/// The file of libvirt's "Cannot access storage file 'PATH' (as uid:U,
/// gid:G): Permission denied" (its check before starting QEMU) or QEMU's
/// "Could not open 'PATH': Permission denied" (passed on by libvirt).
fn denied_path(msg: &str) -> Option<&str> {
    if !msg.contains("Permission denied") {
        return None;
    }
    ["Cannot access storage file '", "Could not open '"]
        .iter()
        .find_map(|lead| {
            let rest = &msg[msg.find(lead)? + lead.len()..];
            Some(&rest[..rest.find('\'')?])
        })
}

/// The uid of the DAC label libvirt gives QEMU: `<baselabel ...>+UID:+GID`
/// of the `dac` security model in the capabilities XML.
fn dac_uid(caps: &str) -> Option<u32> {
    let dac = &caps[caps.find("<model>dac</model>")?..];
    let label = &dac[dac.find("<baselabel")?..];
    let text = &label[label.find('>')? + 1..];
    text.strip_prefix('+')?.split(':').next()?.parse().ok()
}

/// The name of `uid` in /etc/passwd, else `uid N`.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The user this process runs as (its name when /etc/passwd has it).
fn current_user() -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(m) => user_name(m.uid()),
        Err(_) => "your user".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_denied_file_is_found_in_qemus_message() {
        let msg = "internal error: process exited while connecting to monitor: \
                   2026-12-07T05:00:00.000000Z qemu-system-x86_64: -blockdev {...}: \
                   Could not open '/home/u/w/.lago/default/images/vm0.qcow2': Permission denied";
        assert_eq!(
            denied_path(msg),
            Some("/home/u/w/.lago/default/images/vm0.qcow2")
        );
        let libvirt = "Cannot access storage file '/home/u/w/.lago/default/images/vm0_root.qcow2' \
                       (as uid:64055, gid:107): Permission denied";
        assert_eq!(
            denied_path(libvirt),
            Some("/home/u/w/.lago/default/images/vm0_root.qcow2")
        );
        assert_eq!(denied_path("Could not open '/x': No such file"), None);
        assert_eq!(denied_path("Permission denied"), None);
    }

    #[test]
    fn the_dac_label_gives_qemus_uid() {
        let caps = "<capabilities><host><secmodel><model>none</model><doi>0</doi></secmodel>\
                    <secmodel><model>dac</model><doi>0</doi>\
                    <baselabel type='kvm'>+64055:+64057</baselabel>\
                    <baselabel type='qemu'>+64055:+64057</baselabel></secmodel></host></capabilities>";
        assert_eq!(dac_uid(caps), Some(64055));
        assert_eq!(dac_uid("<capabilities/>"), None);
        assert_eq!(user_name(0), "root");
    }
}
