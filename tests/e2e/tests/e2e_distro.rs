//! Real distributions, end to end: the Debian 12 templates that
//! `scripts/distro/build-debian.sh` builds (systemd, OpenSSH; one with
//! cloud-init reading lago's NoCloud seed, one without cloud-init that lago
//! bootstraps offline). `scripts/test.sh` runs this once, inside the VM
//! sandbox, with `LAGO_DISTRO_REPO` naming the repository (default
//! /var/lib/lago/repos/debian12); the per-template loop skips it
//! (`--skip distro_`).

use std::path::PathBuf;

use lago::sdk;
use lago_e2e::{libvirt_objects, Destroy, Env};

/// The repository `scripts/distro/build-debian.sh` wrote.
fn distro_repo() -> PathBuf {
    std::env::var_os("LAGO_DISTRO_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/lago/repos/debian12"))
}

fn init(env: &Env) {
    let repo = distro_repo().join("repo.json");
    assert!(
        repo.is_file(),
        "{} missing: run scripts/distro/build-debian.sh",
        repo.display()
    );
    env.ok(&[
        "init",
        "--template-repo-path",
        repo.to_str().expect("utf-8"),
    ]);
}

fn status(env: &Env) -> serde_json::Value {
    env.status_json()["Prefix"].clone()
}

const CLOUD: &str = r#"
x-vm: &vm
  memory: 768
  vcpu: 1
  disks:
    - {template_name: debian12, type: template, name: root, dev: vda, format: qcow2}
  nics: [{net: mgmt}, {net: data}]
domains:
  deb0:
    <<: *vm
    artifacts: [/root/journal.txt, /etc/os-release]
    metadata:
      deploy-scripts: [$LAGO_INITFILE_PATH/deploy.sh]
  deb1:
    <<: *vm
nets:
  mgmt: {type: nat, management: true}
  data: {type: nat}
"#;

/// A bash script: a unit for the service plugin to stop and start, and the
/// journal into a file for `collect`.
const DEPLOY: &str = r#"#!/bin/bash
set -euo pipefail
cat >/etc/systemd/system/lago-demo.service <<'EOF'
[Service]
ExecStart=/bin/sleep infinity
EOF
systemctl daemon-reload
systemctl start lago-demo
journalctl -b --no-pager >/root/journal.txt
echo "deployed by ${BASH_VERSION%%.*}" >/root/deployed
"#;

#[test]
fn distro_cloud_init_two_vms_two_networks() {
    let env = Env::new(CLOUD);
    let _destroy = Destroy(&env);
    std::fs::write(env.dir.path().join("deploy.sh"), DEPLOY).expect("deploy script");
    let before = libvirt_objects();
    init(&env);
    env.ok(&["start"]);

    // The host key lago put in each seed is the one the VM presented.
    let st = status(&env);
    for vm in ["deb0", "deb1"] {
        assert_eq!(st["VMs"][vm]["ssh host key"], "pinned", "{st}");
        assert_eq!(env.ok(&["shell", vm, "hostname"]).trim(), vm);
        // systemd finished booting with no failed unit.
        let state = env.lago(&["shell", vm, "systemctl", "is-system-running", "--wait"]);
        assert_eq!(
            lago_e2e::text(&state.stdout).trim(),
            "running",
            "failed units: {}",
            env.ok(&["shell", vm, "systemctl", "--failed", "--no-pager"])
        );
    }
    // Name resolution between the VMs (libvirt's dnsmasq on each network;
    // systemd-resolved asks both, so either network's IPv4 address may come
    // back; `getent hosts` would prefer the networks' IPv6 address).
    let resolved = env.ok(&["shell", "deb0", "getent", "ahostsv4", "deb1"]);
    let deb1_ips: Vec<&str> = st["VMs"]["deb1"]["NICs"]
        .as_object()
        .map(|nics| nics.values().filter_map(|n| n["ip"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(deb1_ips.len(), 2, "{st}");
    assert!(
        deb1_ips.iter().any(|ip| resolved.contains(ip)),
        "deb1 resolved to none of {deb1_ips:?}: {resolved}"
    );
    // The AAAA record names an address deb1 holds: its DHCPv6 reservation
    // matched although systemd-networkd sends no DUID-LL.
    let resolved6 = env.ok(&["shell", "deb0", "getent", "ahostsv6", "deb1"]);
    let deb1_v6 = resolved6.split_whitespace().next().unwrap_or_default();
    let held6 = env.ok(&["shell", "deb1", "ip", "-6", "-o", "addr"]);
    assert!(
        !deb1_v6.is_empty() && held6.contains(&format!(" {deb1_v6}/")),
        "deb1 resolves to {resolved6:?}, holds {held6}"
    );
    let addrs = env.ok(&["shell", "deb1", "ip", "-4", "-o", "addr"]);
    assert_eq!(
        addrs.lines().filter(|l| l.contains(" ens")).count(),
        2,
        "{addrs}"
    );

    // Copies both ways.
    let src = env.dir.path().join("payload.txt");
    std::fs::write(&src, "to the VM and back\n").expect("write");
    env.ok(&[
        "copy-to-vm",
        "deb1",
        src.to_str().expect("utf-8"),
        "/root/payload.txt",
    ]);
    let back = env.dir.path().join("back.txt");
    env.ok(&[
        "copy-from-vm",
        "deb1",
        "/root/payload.txt",
        back.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("read"),
        "to the VM and back\n"
    );

    // deploy (a bash script), then collect the journal it wrote and a file.
    env.ok(&["deploy"]);
    assert_eq!(
        env.ok(&["shell", "deb0", "cat", "/root/deployed"]).trim(),
        "deployed by 5"
    );
    let out = env.dir.path().join("collected");
    env.ok(&["collect", "--output", out.to_str().expect("utf-8")]);
    let journal = std::fs::read_to_string(out.join("deb0/_root_journal.txt")).expect("journal");
    assert!(journal.contains("systemd"), "{journal}");
    let os = std::fs::read_to_string(out.join("deb0/_etc_os-release")).expect("os-release");
    assert!(os.contains("bookworm"), "{os}");

    // The systemd service plugin through the Rust SDK.
    let lago = sdk::load_env(&env.workdir(), None, &env.sdk_options()).expect("load_env");
    let deb0 = lago.get_vm("deb0").expect("deb0");
    let ssh = deb0.service("ssh").expect("ssh service");
    assert_eq!(ssh.provider(), "systemd");
    assert!(ssh.alive().expect("ssh alive"));
    let demo = deb0.service("lago-demo").expect("lago-demo");
    assert!(demo.alive().expect("state"));
    demo.stop().expect("stop");
    assert!(!demo.alive().expect("state"));
    demo.start().expect("start");
    assert!(demo.alive().expect("state"));
    drop(lago);

    // shutdown, then start again (a second boot: no seed work left).
    env.ok(&["shutdown", "deb1"]);
    assert_eq!(status(&env)["VMs"]["deb1"]["status"], "down");
    env.ok(&["start", "deb1"]);
    assert_eq!(env.ok(&["shell", "deb1", "hostname"]).trim(), "deb1");
    assert_eq!(status(&env)["VMs"]["deb1"]["ssh host key"], "pinned");

    // snapshot, a change, revert: the change is gone.
    env.ok(&["snapshot", "-n", "deb1", "clean"]);
    env.ok(&["shell", "deb1", "touch", "/root/after-snapshot"]);
    env.ok(&["revert", "-n", "deb1", "clean"]);
    let gone = env.lago(&["shell", "deb1", "test", "-e", "/root/after-snapshot"]);
    assert_eq!(
        gone.status.code(),
        Some(1),
        "the change survived the revert"
    );

    env.ok(&["destroy", "-y"]);
    assert_eq!(libvirt_objects(), before, "destroy left libvirt objects");
}

const OFFLINE: &str = r#"
domains:
  lagostyle:
    memory: 512
    vcpu: 1
    root-password: "n0t-the-default"
    disks:
      - {template_name: debian12-nocloud, type: template, name: root, dev: vda, format: qcow2}
    nics: [{net: mgmt}]
nets:
  mgmt: {type: nat, management: true}
"#;

/// Whether root's password in the VM is `password`: perl's crypt(3) (libxcrypt)
/// against the shadow entry, so nothing but the VM's own files decides.
const CHECK_PASSWORD: &str = r#"@f = split(/:/, `getent shadow root`); print((crypt($ARGV[0], $f[1]) eq $f[1]) ? "match" : "differ")"#;

#[test]
fn distro_offline_bootstrap_without_cloud_init() {
    let env = Env::new(OFFLINE);
    let _destroy = Destroy(&env);
    let before = libvirt_objects();
    init(&env);
    // Nothing to read at boot: no seed was made for it.
    let images = env.workdir().join("default/images");
    let seeds: Vec<_> = std::fs::read_dir(&images)
        .expect("images")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("seed"))
        .collect();
    assert!(seeds.is_empty(), "a seed was built: {seeds:?}");
    env.ok(&["start"]);

    assert_eq!(
        env.ok(&["shell", "lagostyle", "hostname"]).trim(),
        "lagostyle"
    );
    assert_eq!(
        env.ok(&[
            "shell",
            "lagostyle",
            "perl",
            "-e",
            CHECK_PASSWORD,
            "n0t-the-default"
        ])
        .trim(),
        "match"
    );
    assert_eq!(
        env.ok(&["shell", "lagostyle", "perl", "-e", CHECK_PASSWORD, "123456"])
            .trim(),
        "differ",
        "the image's own password is still there"
    );
    // sshd as Debian ships it: no root password logins.
    let sshd = env.ok(&["shell", "lagostyle", "sshd", "-T"]);
    assert!(
        sshd.lines()
            .any(|l| l == "permitrootlogin without-password"),
        "{sshd}"
    );
    let st = status(&env);
    assert_eq!(st["VMs"]["lagostyle"]["ssh host key"], "pinned", "{st}");

    env.ok(&["destroy", "-y"]);
    assert_eq!(libvirt_objects(), before, "destroy left libvirt objects");
}
