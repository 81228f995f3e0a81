//! The environment model end to end, with no hypervisor: init file →
//! plan → stored prefix → read back; the prefix verbs through the `lago`
//! binary; bad input refused with exit 2 and nothing left behind.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{lease_config, lib_init};
use lago::environment::stored_states;
use lago::error::Error;
use lago::network::LeaseStore;
use lago::ops::{self, cleanup_prefix, destroy_in_workdir, InitRequest};
use lago::prefix::{Prefix, Workdir};
use lago::sdk::status_tree;
use lago_plugin_api::spec::EnvSpec;
use lago_test_support::{lago_bin, ok, qemu_img, text, Lago, Project};

/// 3 networks, 5 VMs, anchors and merge keys, static IPs, unknown keys.
const INIT: &str = r#"
x-vm: &vm
  memory: 256
  vcpu: 1
  disks:
    - type: template
      template_name: tiny
      dev: vda
  artifacts: [/var/log]
x-nics: &two-nics
  - net: mgmt
  - net: storage

domains:
  engine:
    <<: *vm
    memory: 1024
    vm-type: ovirt-engine
    nics: *two-nics
    groups: [engine]
    metadata:
      deploy-scripts: [$LAGO_INITFILE_PATH/setup.sh]
    my-plugin-key: {answer: 42}
  host0:
    <<: *vm
    nics:
      - net: mgmt
        ip: 192.168.200.10
      - net: storage
      - net: backend
  host1:
    <<: *vm
    nics: *two-nics
    disks:
      - {template_name: tiny, dev: vda}
      - {type: empty, size: 2G, dev: vdb, name: data}
  storage0:
    <<: *vm
    service_provider: systemd
    nics: [{net: mgmt}, {net: storage, ip: 192.168.210.20}]
  client:
    <<: *vm
    root-password: secret
    nics: [{net: mgmt}, {net: backend}]

nets:
  mgmt:
    type: nat
    management: true
    dhcp: {start: 100, end: 254}
    dns_domain_name: lago.test
  storage:
    type: nat
    gw: 192.168.210.1
    mtu: 9000
  backend:
    type: bridge
    provider-knob: true
"#;

/// A project holding [`INIT`] and a deploy script, run on libvirt's test
/// driver.
fn sandbox() -> Project {
    let sb = Project::with_init(lago_bin!(), INIT).test_driver();
    sb.write("setup.sh", "#!/bin/sh\necho hi\n");
    sb
}

fn store(sb: &Project) -> LeaseStore {
    LeaseStore::new(sb.leases(), std::time::Duration::from_secs(10))
}

/// `lago init` through the library with no provider work. Prefixes other
/// than `default` drop the fixed `gw` (two prefixes cannot lease one
/// subnet).
fn init(sb: &Project, name: &str) -> (Prefix, EnvSpec) {
    let file = if name == "default" {
        sb.proj().join("LagoInitFile")
    } else {
        sb.write(
            &format!("{name}.yaml"),
            &INIT.replace("    gw: 192.168.210.1\n", ""),
        )
    };
    lib_init(&file, &sb.proj().join(".lago"), &sb.leases(), name)
}

#[test]
fn plan_store_and_read_back_identically() {
    let sb = sandbox();
    let (prefix, env) = init(&sb, "default");
    let back = prefix.load_env().expect("load");
    assert_eq!(back, env, "stored state reads back identically");
    // and the read-back state survives another write/read unchanged
    prefix.save_env(&back).expect("save");
    assert_eq!(prefix.load_env().expect("load"), env);

    assert_eq!(env.domains.len(), 5);
    assert_eq!(env.nets.len(), 3);
    let engine = &env.domains["engine"];
    assert_eq!(engine.memory, 1024);
    assert_eq!(engine.vcpu, 1);
    assert_eq!(engine.vm_type, "ovirt-engine");
    assert_eq!(engine.vm_provider, "local-libvirt");
    assert_eq!(engine.artifacts, vec!["/var/log".to_string()]);
    assert_eq!(engine.extra["my-plugin-key"]["answer"], 42);
    assert!(
        env.extra.contains_key("x-vm"),
        "unknown top-level keys are kept"
    );
    assert_eq!(env.nets["backend"].extra["provider-knob"], true);
    assert_eq!(env.nets["storage"].mtu, Some(9000));
    assert_eq!(
        env.nets["mgmt"].dns_domain_name.as_deref(),
        Some("lago.test")
    );
    let host0 = &env.domains["host0"];
    let mgmt_gw = env.nets["mgmt"].gw.expect("gw");
    assert_eq!(host0.nics[0].ip.map(|i| i.octets()[3]), Some(10));
    assert_eq!(
        host0.nics[0].ip.map(|i| i.octets()[2]),
        Some(mgmt_gw.octets()[2])
    );
    assert_eq!(
        env.nets["storage"].gw.map(|g| g.to_string()).as_deref(),
        Some("192.168.210.1")
    );
    assert_eq!(
        env.domains["storage0"].nics[1]
            .ip
            .map(|i| i.to_string())
            .as_deref(),
        Some("192.168.210.20")
    );
    assert_eq!(host0.nics[2].ip, None, "bridge nets get no address");
    assert_eq!(
        env.domains["client"].root_password.as_deref(),
        Some("secret")
    );
    assert_eq!(env.domains["host1"].disks[1].name, "data");

    // the layout on disk
    let p = prefix.path();
    let uuid = std::fs::read_to_string(p.join("uuid")).expect("uuid");
    assert_eq!(uuid.len(), 32);
    assert_eq!(env.prefix.uuid, uuid);
    assert!(p.join("initialized").is_file());
    assert!(p.join("metadata").is_file());
    assert!(p.join("images").is_dir());
    assert!(p.join("logs/lago.log").is_file());
    assert!(p.join("virt/env").is_file());
    assert!(p.join("virt/vms/engine.json").is_file());
    assert!(p.join("virt/nets/storage.json").is_file());
    let mode = |f: &Path| std::fs::metadata(f).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&p.join("id_ed25519")), 0o600);
    assert!(std::fs::read_to_string(p.join("id_ed25519.pub"))
        .expect("pub")
        .starts_with("ssh-ed25519 "));
    for vm in env.domains.values() {
        assert_eq!(mode(&env.prefix.host_key_path(&vm.name)), 0o600);
        assert!(vm
            .ssh_host_key
            .as_deref()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ")));
    }
    // deploy scripts copied, paths rewritten into the prefix
    let scripts = engine.metadata["deploy-scripts"].as_array().expect("list");
    let copied = PathBuf::from(scripts[0].as_str().expect("str"));
    assert!(copied.starts_with(p.join("scripts")));
    assert_eq!(
        std::fs::read_to_string(&copied).expect("copy"),
        "#!/bin/sh\necho hi\n"
    );
    // two NAT nets leased, the bridge none
    assert_eq!(sb.lease_files(), 2);
    // the workdir's current link points at the first prefix
    let wd = Workdir::open(&sb.proj().join(".lago")).expect("wd");
    assert_eq!(wd.current().expect("current").as_deref(), Some("default"));
}

#[test]
fn status_in_lagos_shape() {
    let sb = sandbox();
    let (_prefix, env) = init(&sb, "default");
    let tree = status_tree(&env, &stored_states(&env));
    let p = &tree["Prefix"];
    assert_eq!(p["UUID"], env.prefix.uuid.as_str());
    assert_eq!(p["Networks"]["storage"]["gateway"], "192.168.210.1");
    assert_eq!(p["Networks"]["mgmt"]["management"], true);
    assert_eq!(p["Networks"]["backend"]["status"], "down");
    assert_eq!(p["VMs"]["client"]["root password"], "secret");
    assert_eq!(p["VMs"]["client"]["status"], "down");
    assert_eq!(p["VMs"]["host0"]["NICs"]["eth2"]["ip"], "N/A");
    assert_eq!(p["VMs"]["host0"]["NICs"]["eth1"]["network"], "storage");

    // through the binary, every out-format
    let out = sb.lago(&["status", "-f", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["Prefix"]["VMs"]["host0"]["NICs"]["eth0"]["ip"],
        env.domains["host0"].nics[0]
            .ip
            .map(|i| i.to_string())
            .unwrap_or_default()
    );
    assert!(v["Prefix"]["Base directory"]
        .as_str()
        .is_some_and(|s| s.ends_with(".lago/default")));
    for fmt in ["default", "yaml", "flat"] {
        let out = sb.lago(&["status", "-f", fmt]);
        assert!(out.status.success(), "{fmt}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("192.168.210.1"),
            "{fmt}: {}",
            text(&out.stdout)
        );
    }
    let flat = text(&sb.lago(&["-f", "flat", "status"]).stdout);
    assert!(
        flat.contains("Networks/storage/gateway: 192.168.210.1"),
        "{flat}"
    );
}

#[test]
fn list_and_set_current() {
    let sb = sandbox();
    init(&sb, "default");
    init(&sb, "second");
    let out = sb.lago(&["list", "-f", "json", "--details"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["default"]["current"], true);
    assert_eq!(v["second"]["current"], false);
    assert_eq!(v["second"]["initialized"], true);
    let out = sb.lago(&["set-current", "second"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&sb.lago(&["list", "-f", "json", "--details"]).stdout)
            .expect("json");
    assert_eq!(v["second"]["current"], true);
    let link = std::fs::read_link(sb.proj().join(".lago/current")).expect("link");
    assert_eq!(link, PathBuf::from("second"), "relative link");
    let out = sb.lago(&["set-current", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no prefix named \"nope\""),
        "{}",
        text(&out.stderr)
    );
    // -P picks a prefix; found from a subfolder by walking up
    let sub = sb.proj().join("a/b");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let out = sb.lago_in(&sub, &["-P", "default", "status", "-f", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // no workdir anywhere: a helpful error
    let out = sb.lago_in(sb.dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no lago workdir") && err.contains("proj/.lago"),
        "{err}"
    );
}

#[test]
fn generate_config_shows_env_override() {
    let sb = sandbox();
    let out = Lago::new(lago_bin!())
        .arg("generate-config")
        .home(sb.home())
        .env("XDG_CONFIG_HOME", sb.home().join(".config"))
        .env("LAGO__INIT__TEMPLATE_STORE", "/var/tmp")
        .output();
    assert!(out.status.success());
    let ini = text(&out.stdout);
    assert!(ini.contains("[init]\n"), "{ini}");
    assert!(ini.contains("template_store = /var/tmp\n"), "{ini}");
    assert!(ini.contains("lease_dir = /var/lib/lago/subnets\n"), "{ini}");
    assert!(
        ini.contains("# Local store of downloaded template images\n"),
        "{ini}"
    );
    let verbose = text(&sb.lago(&["generate-config", "--verbose"]).stdout);
    assert!(verbose.contains("# template_repo_name =\n"), "{verbose}");
    // the user's file is read
    sb.conf("[lago]\nssh_user = alice\n");
    let ini = text(&sb.lago(&["generate-config"]).stdout);
    assert!(ini.contains("ssh_user = alice\n"), "{ini}");
}

/// Every bad input: exit 2, its message, and nothing on disk.
#[test]
fn bad_inputs_are_refused_and_leave_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown net",
            "      - net: storage\n      - net: backend\n",
            "      - net: storage\n      - net: backnd\n",
        ),
        (
            "two management",
            "    gw: 192.168.210.1\n",
            "    gw: 192.168.210.1\n    management: true\n",
        ),
        (
            "no management nic",
            "    nics: [{net: mgmt}, {net: backend}]\n",
            "    nics: [{net: backend}]\n",
        ),
        (
            "duplicate static",
            "      - net: storage\n      - net: backend\n",
            "      - net: storage\n        ip: 192.168.210.20\n      - net: backend\n",
        ),
        ("outside subnet", "ip: 192.168.210.20", "ip: 192.168.211.20"),
        (
            "planned key",
            "    root-password: secret\n",
            "    root-password: secret\n    libvirt_name: x\n",
        ),
        (
            "template without name",
            "      - {template_name: tiny, dev: vda}\n",
            "      - {type: template, dev: vda}\n",
        ),
        ("wrong type", "    memory: 1024\n", "    memory: lots\n"),
        ("syntax", "nets:\n", "nets: [\n"),
        ("missing script", "setup.sh]", "nope.sh]"),
        (
            "undefined variable",
            "$LAGO_INITFILE_PATH/setup.sh",
            "$NOT_DEFINED_ANYWHERE/setup.sh",
        ),
    ];
    let expected_msgs = [
        "domains/host0/nics/2/net: unknown network \"backnd\"",
        "two management networks",
        "has no nic on the management network mgmt",
        "duplicate static IP 192.168.210.20",
        "outside the subnet 192.168.210.0/24",
        "domains/client/libvirt_name: `libvirt_name` is planned by lago",
        "without `template_name`",
        "domains/engine/memory: wrong type: found string \"lots\" (expected a whole number of MiB)",
        "not valid YAML",
        "does not exist",
        "undefined environment variable $NOT_DEFINED_ANYWHERE",
    ];
    for ((what, from, to), msg) in cases.iter().zip(expected_msgs) {
        let sb = sandbox();
        assert!(INIT.contains(from), "{what}: {from:?} not in the init file");
        std::fs::write(sb.proj().join("LagoInitFile"), INIT.replacen(from, to, 1)).expect("write");
        let out = sb.lago(&["init"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(msg), "{what}: expected {msg:?} in {err}");
        assert!(
            err.contains("LagoInitFile:"),
            "{what}: the file is named: {err}"
        );
        assert!(!sb.proj().join(".lago").exists(), "{what}: nothing created");
        assert_eq!(sb.lease_files(), 0, "{what}: no lease left");
    }
}

#[test]
fn failed_prepare_removes_everything() {
    let sb = sandbox();
    let req = InitRequest::new(sb.proj().join("LagoInitFile"), sb.proj().join(".lago"));
    let mut hook = |p: &Prefix, _: &mut EnvSpec| -> Result<(), Error> {
        assert!(
            p.path().join("virt/env").is_file(),
            "stored before the hook"
        );
        assert!(!p.is_initialized(), "marker only after the hook");
        Err(Error::user("the provider said no"))
    };
    let e = ops::init(&req, &lease_config(&sb.leases()), &mut hook).expect_err("fails");
    assert!(e.to_string().contains("the provider said no"));
    assert!(!sb.proj().join(".lago").exists());
    assert_eq!(sb.lease_files(), 0);
    // a second prefix in an existing workdir: only it goes
    init(&sb, "default");
    let mut req = InitRequest::new(sb.proj().join("LagoInitFile"), sb.proj().join(".lago"));
    req.prefix_name = "other".into();
    ops::init(&req, &lease_config(&sb.leases()), &mut hook).expect_err("fails");
    assert!(sb.proj().join(".lago/default/initialized").exists());
    assert!(!sb.proj().join(".lago/other").exists());
    assert_eq!(sb.lease_files(), 2);
    // init over an existing prefix is refused
    let out = sb.lago(&["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn cleanup_and_destroy() {
    let sb = sandbox();
    let (a, _) = init(&sb, "default");
    let (b, env_b) = init(&sb, "second");
    assert_eq!(sb.lease_files(), 4);
    // As after `lago start`: the provider teardown is needed.
    a.mark_started().expect("started");
    b.mark_started().expect("started");
    let mut teardowns = Vec::new();
    let mut hook = |p: &Prefix, env: Option<&EnvSpec>| -> Result<(), Error> {
        // the hook runs before anything is removed
        assert!(p.path().join("uuid").exists());
        teardowns.push((p.name().to_string(), env.map(|e| e.domains.len())));
        Ok(())
    };
    cleanup_prefix(&b, &store(&sb), &mut hook).expect("cleanup");
    assert!(!b.is_initialized());
    assert!(b.path().join("virt/env").exists(), "files stay");
    assert_eq!(sb.lease_files(), 2, "cleanup releases the leases");
    // verbs on the cleaned prefix say so clearly
    let out = sb.lago(&["-P", "second", "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not initialized"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(b.load_env().expect("state still readable"), env_b);

    let wd = Workdir::open(&sb.proj().join(".lago")).expect("wd");
    destroy_in_workdir(&wd, Some(&["default".to_string()]), &store(&sb), &mut hook)
        .expect("destroy");
    assert!(!a.path().exists());
    assert_eq!(
        wd.current().expect("cur").as_deref(),
        Some("second"),
        "current pointed at the destroyed prefix: re-pointed at the one left"
    );
    assert!(wd.path().exists(), "another prefix is left");
    destroy_in_workdir(&wd, None, &store(&sb), &mut hook).expect("destroy all");
    assert!(!wd.path().exists(), "last prefix gone: workdir gone");
    assert_eq!(sb.lease_files(), 0);
    // The cleaned-up prefix needs no teardown any more (not-started again).
    assert_eq!(
        teardowns,
        vec![("second".into(), Some(5)), ("default".into(), Some(5))]
    );
}

#[test]
fn destroy_verb() {
    let sb = sandbox();
    init(&sb, "default");
    init(&sb, "second");
    // Without providers at hand, drop the stored state so the verb's provider
    // teardown has nothing to do (a prefix whose init died early looks so).
    for n in ["default", "second"] {
        std::fs::remove_dir_all(sb.proj().join(".lago").join(n).join("virt")).expect("rm");
    }
    // asks, and "n" aborts
    let out = sb.cmd(&["destroy"]).stdin("n\n").output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Do you really want to destroy"));
    assert!(sb.proj().join(".lago/default").exists());
    // no answer at all: refused
    let out = sb.lago(&["destroy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(sb.proj().join(".lago/default").exists());
    // an empty answer is yes, as Lago
    let out = sb.cmd(&["destroy"]).stdin("\n").output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!sb.proj().join(".lago/default").exists());
    assert_eq!(sb.lease_files(), 2);
    // through a symlinked workdir: only the link goes
    let link_dir = sb.dir.path().join("elsewhere");
    std::fs::create_dir_all(&link_dir).expect("mkdir");
    std::os::unix::fs::symlink(sb.proj().join(".lago"), link_dir.join(".lago")).expect("link");
    let out = sb.lago_in(&link_dir, &["-P", "second", "destroy", "-y"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!link_dir.join(".lago").exists());
    assert!(sb.proj().join(".lago/second").exists());
    // --all-prefixes -y: everything, workdir included
    let out = sb.lago(&["destroy", "-y", "--all-prefixes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!sb.proj().join(".lago").exists());
    assert_eq!(sb.lease_files(), 0);
}

/// Lago's `make_a_copy` of a `file` disk's `path` (the shape `lago export`
/// writes for data disks, as Lago's generate_init did): `init` copies the
/// image into the prefix (decompressing an `.xz` one) and the VM uses the
/// copy; the image at `path` is only read.
#[test]
fn file_disks_with_make_a_copy_are_copied_into_the_prefix() {
    let sb = sandbox();
    let image = sb.proj().join("data.qcow2");
    qemu_img::create(&image, "qcow2", "1M");
    let original = std::fs::read(&image).expect("image");
    lago::templates::xz::compress(&image, &sb.proj().join("data.qcow2.xz"), "test")
        .expect("compress");
    std::fs::write(
        sb.proj().join("LagoInitFile"),
        r#"
domains:
  vm0:
    memory: 256
    nics: [{net: mgmt}]
    disks:
      - {type: file, name: plain, dev: vda, format: qcow2, make_a_copy: 'True', path: $LAGO_INITFILE_PATH/data.qcow2}
      - {type: file, name: packed, dev: vdb, format: qcow2, make_a_copy: true, path: $LAGO_INITFILE_PATH/data.qcow2.xz}
      - {type: file, name: inplace, dev: vdc, format: qcow2, path: $LAGO_INITFILE_PATH/data.qcow2}
nets:
  mgmt: {type: nat, management: true}
"#,
    )
    .expect("write");
    ok(&sb.lago(&["init", "--skip-bootstrap"]), "init");
    let prefix = Prefix::open(&sb.proj().join(".lago/default")).expect("prefix");
    let env = prefix.load_env().expect("env");
    let disks = &env.domains["vm0"].disks;
    let images = prefix.path().join("images");
    for (i, name) in ["plain", "packed"].iter().enumerate() {
        let path = disks[i].path.clone().expect("a path");
        assert!(path.starts_with(&images), "{name}: {}", path.display());
        assert_eq!(
            std::fs::read(&path).expect("copy"),
            original,
            "{name}: the copy holds the image"
        );
    }
    assert_eq!(
        disks[2].path.as_deref(),
        Some(image.as_path()),
        "used in place"
    );
    assert_eq!(std::fs::read(&image).expect("image"), original, "only read");
    ok(&sb.lago(&["destroy", "-y"]), "destroy");
    assert!(image.is_file() && sb.proj().join("data.qcow2.xz").is_file());
}
