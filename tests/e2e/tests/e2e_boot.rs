//! Bringing VMs up, end to end: a root disk on `sd*` (virtio-scsi), SSH
//! that refuses lago's key reported as such, and a VM that cannot boot
//! reported at once with its console's line instead of after the whole SSH
//! budget. `scripts/test.sh` runs this inside the VM sandbox.

use std::path::Path;
use std::process::Command;

use lago_e2e::{text, Destroy, Env};

const ON_SDA: &str = r#"
domains:
  vm0:
    memory: 256
    vcpu: 1
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: sda, format: qcow2}
    nics: [{net: mgmt}]
    # lago logs in with the prefix key, then with this password (not
    # root's): once the key is wrong, every method is refused.
    root-password: the-root-password
    ssh-password: not-the-root-password
nets:
  mgmt: {type: nat, management: true}
"#;

#[test]
fn root_on_sda_and_a_refused_key() {
    let env = Env::new(ON_SDA);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let _destroy = Destroy(&env);
    env.ok(&["start"]);
    // The root file system is on the virtio-scsi disk.
    let root = env.ok(&[
        "shell",
        "vm0",
        "-c",
        "awk '$2 == \"/\" {print $1}' /proc/mounts",
    ]);
    assert!(root.trim().starts_with("/dev/sda"), "root on {root:?}");

    // Another key in the prefix's place: the VM refuses it, and the verbs
    // that wait for SSH say so (user, methods) rather than time out.
    let key = env.workdir().join("default/id_ed25519");
    std::fs::remove_file(&key).expect("remove the key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let out = env.lago(&["shell", "vm0", "true"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("VM `vm0` answers SSH but refused to log in")
            && err.contains("as user \"root\"")
            && err.contains("tried: public key")
            && err.contains(", password)"),
        "{err}"
    );
    assert!(!err.contains("timed out"), "{err}");
}

/// A boot sector that writes `line` to the first serial port and halts: a
/// disk whose "boot" ends on the console the way a kernel without its root
/// file system does.
fn failing_boot_disk(path: &Path, line: &str) {
    let msg = format!("\r\n{line}\r\n\0");
    let mut sector: Vec<u8> = vec![
        0x31, 0xc0, // xor ax, ax
        0x8e, 0xd8, // mov ds, ax
        0xfc, // cld
        0xbe, 0x17, 0x7c, // mov si, 0x7c17 (the message)
        0xac, // next: lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x06, // jz halt
        0xba, 0xf8, 0x03, // mov dx, 0x3f8 (COM1)
        0xee, // out dx, al
        0xeb, 0xf5, // jmp next
        0xfa, // halt: cli
        0xf4, // hlt
        0xeb, 0xfd, // jmp hlt
    ];
    assert_eq!(sector.len(), 0x17);
    sector.extend_from_slice(msg.as_bytes());
    assert!(sector.len() <= 510, "message too long for one sector");
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    sector.resize(1 << 20, 0);
    std::fs::write(path, sector).expect("write the disk");
}

#[test]
fn a_vm_that_cannot_boot_fails_at_once_with_its_console_line() {
    let line = "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)";
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = dir.path().join("broken.raw");
    failing_boot_disk(&disk, line);
    let env = Env::new(&format!(
        r#"
domains:
  broken:
    memory: 256
    vcpu: 1
    disks:
      - {{type: file, name: root, path: {}, dev: vda, format: raw}}
    nics: [{{net: mgmt}}]
nets:
  mgmt: {{type: nat, management: true}}
"#,
        disk.display()
    ));
    env.ok(&["init"]);
    let _destroy = Destroy(&env);
    // With Lago's budget (100 tries of 10 s) this would wait over 16
    // minutes; the console ends the wait.
    let out = env.lago(&["start"]);
    assert!(!out.status.success(), "a VM that cannot boot fails start");
    let err = text(&out.stderr);
    assert!(
        err.contains("VM `broken` will not come up") && err.contains("it cannot boot"),
        "{err}"
    );
    assert!(err.contains(&format!("{line:?}")), "the line quoted: {err}");
    // Every verb that waits for SSH gives up the same way.
    let out = env.lago(&["shell", "broken", "true"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("VM `broken` will not come up") && err.contains("Kernel panic"),
        "{err}"
    );
}
