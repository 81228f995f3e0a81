//! Building seeds (xorriso) and preparing disks (qemu-img) for real, in a
//! temporary prefix.

mod common;

use std::path::Path;
use std::process::Command;

use lago_provider_local_libvirt::session::LibvirtSession;
use lago_provider_local_libvirt::tools::which;

use common::{sample_env, test_options};

const HOST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
QyNTUxOQAAACDummyDummyDummyDummyDummyDummyDummyDummyAAAA\n\
-----END OPENSSH PRIVATE KEY-----\n";

fn write_prefix_keys(prefix: &Path, vm: &str) {
    std::fs::write(
        prefix.join("id_ed25519.pub"),
        "ssh-ed25519 AAAAprefixkey lago@test\n",
    )
    .expect("pub");
    std::fs::create_dir_all(prefix.join("host-keys")).expect("host-keys");
    std::fs::write(prefix.join("host-keys").join(vm), HOST_KEY).expect("host key");
}

fn extract_iso(iso: &Path, out: &Path) {
    let st = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", "/"])
        .arg(out)
        .output()
        .expect("xorriso runs");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

fn volume_id(iso: &Path) -> String {
    let out = Command::new("xorriso")
        .args(["-indev"])
        .arg(iso)
        .args(["-pvd_info"])
        .output()
        .expect("xorriso runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("Volume Id"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn bootstrap_builds_a_cidata_seed_that_start_attaches() {
    if which("xorriso").is_none() {
        eprintln!("xorriso missing: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sample_env(dir.path());
    let vm = env.domains.get_mut("vm0").expect("vm0");
    vm.ssh_host_key = Some("ssh-ed25519 AAAAhostkey vm0".into());
    write_prefix_keys(dir.path(), "vm0");
    let session = LibvirtSession::new(env.clone(), test_options());

    session.bootstrap("vm0").expect("bootstrap");
    let iso = dir.path().join("images/vm0-seed.iso");
    assert!(iso.is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&iso).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(volume_id(&iso), "cidata");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("images"))
        .expect("images")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left: {leftovers:?}");

    let out = dir.path().join("extracted");
    extract_iso(&iso, &out);
    let meta = std::fs::read_to_string(out.join("meta-data")).expect("meta-data");
    assert_eq!(
        meta,
        format!(
            "instance-id: \"{}-vm0\"\nlocal-hostname: \"vm0\"\n",
            env.prefix.uuid
        )
    );
    let user = std::fs::read_to_string(out.join("user-data")).expect("user-data");
    assert!(user.starts_with("#cloud-config\n"), "{user}");
    assert!(user.contains("ssh_authorized_keys:\n  - \"ssh-ed25519 AAAAprefixkey lago@test\"\n"));
    assert!(user.contains("chpasswd:\n  list: \"root:secret\"\n  expire: false\n"));
    assert!(user.contains("ssh_pwauth: true\n"));
    assert!(
        user.contains("ssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n")
    );
    assert!(user.contains("    -----END OPENSSH PRIVATE KEY-----\n  ed25519_public: \"ssh-ed25519 AAAAhostkey vm0\"\n"));

    // start attaches the seed (vm0 has vda, sda, sdb: the seed is sdc on SATA).
    let xml = session.domain_xml("vm0").expect("xml");
    assert!(
        xml.contains(&format!("<source file='{}'/>", iso.display())),
        "{xml}"
    );
    assert!(xml.contains("<target dev='sdc' bus='sata'/>"), "{xml}");

    // Rebuilding replaces the image.
    session.bootstrap("vm0").expect("again");
    assert!(iso.is_file());
}

#[test]
fn bootstrap_off_builds_nothing_and_attaches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let session = LibvirtSession::new(env, test_options());
    session.bootstrap("vm2").expect("no-op");
    assert!(!dir.path().join("images/vm2-seed.iso").exists());
    // Even a seed file on disk is not attached to a VM with bootstrap off.
    std::fs::create_dir_all(dir.path().join("images")).expect("images");
    std::fs::write(dir.path().join("images/vm2-seed.iso"), b"").expect("seed");
    let xml = session.domain_xml("vm2").expect("xml");
    assert!(!xml.contains("seed"), "{xml}");
}

#[test]
fn bootstrap_without_prefix_key_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let session = LibvirtSession::new(env, test_options());
    let err = session.bootstrap("vm1").expect_err("no key").to_string();
    assert!(err.contains("id_ed25519.pub"), "{err}");
}

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn prepare_makes_overlays_and_empty_disks() {
    if which("qemu-img").is_none() {
        eprintln!("qemu-img missing: skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).expect("images");
    let base = images.join("base.qcow2");
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&base)
        .arg("32M")
        .status()
        .expect("qemu-img");
    assert!(st.success());
    // A stale overlay of an earlier failed init is replaced.
    std::fs::write(images.join("vm0_root.qcow2"), b"garbage").expect("stale");

    let session = LibvirtSession::new(env, test_options());
    session.prepare("vm0").expect("prepare");

    let root = qemu_img_info(&images.join("vm0_root.qcow2"));
    assert_eq!(root["format"], "qcow2");
    assert_eq!(root["backing-filename"], base.display().to_string());
    assert_eq!(root["backing-filename-format"], "qcow2");
    let data = qemu_img_info(&images.join("vm0_data.raw"));
    assert_eq!(data["format"], "raw");
    assert_eq!(data["virtual-size"], 8 * 1024 * 1024);
    let more = qemu_img_info(&images.join("vm0_more.qcow2"));
    assert_eq!(more["format"], "qcow2");
    assert_eq!(more["virtual-size"], 16 * 1024 * 1024);
}

#[test]
fn prepare_file_disks_use_or_copy_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sample_env(dir.path());
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).expect("images");
    // Only vm1's iso disk (a file disk): no qemu-img needed.
    env.domains.get_mut("vm1").expect("vm1").disks.remove(0);

    // A file disk is used as it is: missing is an error.
    let session = LibvirtSession::new(env.clone(), test_options());
    let err = session.prepare("vm1").expect_err("missing iso").to_string();
    assert!(
        err.contains("install.iso") && err.contains("does not exist"),
        "{err}"
    );

    // make_a_copy copies the source to the planned path.
    let src = dir.path().join("source.iso");
    std::fs::write(&src, b"iso bytes").expect("src");
    let disk = &mut env.domains.get_mut("vm1").expect("vm1").disks[0];
    disk.extra
        .insert("make_a_copy".into(), serde_json::Value::Bool(true));
    disk.url = Some(src.display().to_string());
    let session = LibvirtSession::new(env, test_options());
    session.prepare("vm1").expect("copied");
    assert_eq!(
        std::fs::read(images.join("install.iso")).expect("copy"),
        b"iso bytes"
    );
}

#[test]
fn build_without_libguestfs_says_so() {
    if which("virt-customize").is_some() {
        eprintln!("virt-customize installed: the missing-tool message is not reachable");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = sample_env(dir.path());
    let vm = env.domains.get_mut("vm2").expect("vm2");
    vm.disks[0].disk_type = lago_plugin_api::spec::DiskType::File;
    vm.disks[0].build = Some(serde_json::json!([{"virt-customize": {"ssh-inject": ""}}]));
    std::fs::create_dir_all(dir.path().join("images")).expect("images");
    std::fs::write(dir.path().join("images/vm2_root.qcow2"), b"x").expect("disk");
    let session = LibvirtSession::new(env, test_options());
    let err = session
        .prepare("vm2")
        .expect_err("no libguestfs")
        .to_string();
    assert!(err.contains("virt-customize is not installed"), "{err}");
    assert!(err.contains("libguestfs"), "{err}");
}

/// A disk made over a store template names its backing image explicitly,
/// with libvirt's DAC relabelling off for it: a system libvirtd with
/// dynamic ownership would otherwise hand the shared store image to QEMU's
/// user for good. The chain ends there (`<backingStore/>`).
#[test]
fn the_store_image_is_never_relabelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sample_env(dir.path());
    let session = LibvirtSession::new(env, test_options());
    let xml = session.domain_xml("vm2").expect("xml");
    let base = dir.path().join("images/base.qcow2");
    let expected = format!(
        "<backingStore type='file'><format type='qcow2'/><source file='{}'><seclabel model='dac' relabel='no'/></source><backingStore/></backingStore>",
        base.display()
    );
    assert!(
        xml.replace(['\n', ' '], "")
            .contains(&expected.replace(['\n', ' '], "")),
        "{xml}"
    );
}
