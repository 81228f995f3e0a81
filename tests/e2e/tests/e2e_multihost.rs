//! One environment over two libvirt hosts (docs/multi-host.md), in the
//! sandbox pair of `scripts/sandbox/pair-up.sh`: host A runs lago and is
//! the default host; host B is reached only through
//! `qemu+ssh://root@B/system` and SSH, and shares no file with A.
//!
//! Runs when `LAGO_E2E=1` and `LAGO_PAIR_B_URL` are set (scripts/test.sh,
//! inside `run.sh A`); otherwise it fails loudly.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use lago_e2e::{libvirt_objects, text, virsh_at, Destroy, Env};
use serde_json::Value;

/// The tests share the two hosts and check them empty: one at a time.
static HOSTS: Mutex<()> = Mutex::new(());

fn hosts() -> std::sync::MutexGuard<'static, ()> {
    HOSTS.lock().unwrap_or_else(|p| p.into_inner())
}

fn b_url() -> String {
    std::env::var("LAGO_PAIR_B_URL")
        .expect("LAGO_PAIR_B_URL: run inside the sandbox pair (scripts/test.sh)")
}

fn b_addr() -> String {
    std::env::var("LAGO_PAIR_B_ADDR").expect("LAGO_PAIR_B_ADDR")
}

/// Three VMs on one management net: vm0 and vm1 on the default host, vm2
/// on host `hv2` (B).
fn initfile(url: &str) -> String {
    format!(
        r#"
hosts:
  hv2:
    libvirt_url: {url}
x-vm: &vm
  memory: 256
  vcpu: 1
  disks:
    - {{template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}}
domains:
  vm0:
    <<: *vm
    nics: [{{net: lago}}]
  vm1:
    <<: *vm
    nics: [{{net: lago}}]
  vm2:
    <<: *vm
    host: hv2
    nics: [{{net: lago}}]
nets:
  lago:
    type: nat
    management: true
    dns_domain_name: lago.local
"#
    )
}

/// What libvirt and the kernel hold of lago's on host B: domains,
/// networks, pools other than the shared template pool, volumes of those
/// pools, and VXLAN devices.
fn b_objects() -> Vec<String> {
    let url = b_url();
    let mut out = virsh_at(&url, &["list", "--all", "--name"]);
    out.extend(virsh_at(&url, &["net-list", "--all", "--name"]));
    for pool in virsh_at(&url, &["pool-list", "--all", "--name"]) {
        if pool == "lago-templates" {
            continue;
        }
        out.push(format!("pool {pool}"));
    }
    out.extend(vxlan_devices(&[
        "ssh",
        &format!("root@{}", b_addr()),
        "ip",
        "-br",
        "link",
    ]));
    out.extend(guard_rules(&[
        "ssh",
        &format!("root@{}", b_addr()),
        "iptables",
        "-w",
        "-S",
    ]));
    out
}

/// lago's firewall rules (`lago:vx...` comments) in `iptables -S` output.
fn guard_rules(argv: &[&str]) -> Vec<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("iptables -S");
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains("lago:vx"))
        .map(str::to_string)
        .collect()
}

/// Packets the `lago:vx...` rule of `chain` dropped on host A.
fn dropped_on_a(chain: &str) -> u64 {
    let out = Command::new("iptables")
        .args(["-w", "-L", chain, "-v", "-n", "-x"])
        .output()
        .expect("iptables -L");
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains("lago:vx"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn vxlan_devices(argv: &[&str]) -> Vec<String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("ip link");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|d| d.starts_with("vx"))
        .map(str::to_string)
        .collect()
}

fn a_objects() -> Vec<String> {
    let mut out = libvirt_objects();
    out.extend(vxlan_devices(&["ip", "-br", "link"]));
    out.extend(guard_rules(&["iptables", "-w", "-S"]));
    out
}

fn shell(env: &Env, vm: &str, cmd: &[&str]) -> String {
    let mut args = vec!["shell", vm, "--"];
    args.extend_from_slice(cmd);
    env.ok(&args).trim().to_string()
}

#[test]
fn multihost_three_vms_on_two_hosts() {
    let _hosts = hosts();
    assert!(
        a_objects().is_empty(),
        "host A is not clean: {:?}",
        a_objects()
    );
    assert!(
        b_objects().is_empty(),
        "host B is not clean: {:?}",
        b_objects()
    );
    let env = Env::new(&initfile(&b_url()));
    let _cleanup = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let pools = virsh_at(&b_url(), &["pool-list", "--all", "--name"]);
    assert!(pools.iter().any(|p| p == "lago-templates"), "{pools:?}");
    env.ok(&["start"]);

    // Where each VM runs.
    let b_domains = virsh_at(&b_url(), &["list", "--name"]);
    assert_eq!(b_domains.len(), 1, "{b_domains:?}");
    assert!(b_domains[0].ends_with("-vm2"), "{b_domains:?}");
    let a_domains = lago_e2e::virsh(&["list", "--name"]);
    assert_eq!(a_domains.len(), 2, "{a_domains:?}");

    // SSH through lago (vm2 through host B) and through `ssh -F`.
    let config = env.workdir().join("default").join("ssh_config");
    for vm in ["vm0", "vm1", "vm2"] {
        assert_eq!(shell(&env, vm, &["hostname"]), vm);
        let out = Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .args([vm, "hostname"])
            .output()
            .expect("ssh");
        assert!(out.status.success(), "ssh -F {vm}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), vm);
    }
    let config_text = std::fs::read_to_string(&config).expect("ssh_config");
    assert!(
        config_text.contains(&format!("ProxyJump root@{}", b_addr())),
        "{config_text}"
    );

    // One L2 segment, one DNS: by name, across hosts, both ways.
    for (from, to) in [("vm0", "vm2"), ("vm2", "vm1"), ("vm2", "vm0.lago.local")] {
        shell(&env, from, &["ping", "-c", "2", "-W", "5", to]);
    }
    // Guests cannot reach the tunnels: a datagram forged by vm0 to the
    // VXLAN port of host B (through A's NAT) and of its own gateway is
    // dropped on A.
    assert!(!guard_rules(&["iptables", "-w", "-S"]).is_empty());
    let (fwd, input) = (dropped_on_a("FORWARD"), dropped_on_a("INPUT"));
    for to in [b_addr(), "192.168.200.1".to_string()] {
        // (bash's /dev/udp: the template's busybox nc speaks TCP only)
        env.ok(&[
            "shell",
            "vm0",
            "--",
            "bash",
            "-c",
            &format!("echo forged > /dev/udp/{to}/4789"),
        ]);
    }
    assert!(
        dropped_on_a("FORWARD") > fwd,
        "nothing dropped on its way to B"
    );
    assert!(
        dropped_on_a("INPUT") > input,
        "nothing dropped on its way to A"
    );

    // Full-size frames across the tunnel (the net's MTU leaves room for
    // VXLAN's headers): a 4 MB file copied to vm2 and back is intact.
    let big = env.dir.path().join("big.bin");
    let data: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &data).expect("write");
    let big_s = big.display().to_string();
    env.ok(&["copy-to-vm", "vm2", &big_s, "/tmp/big.bin"]);
    let back = env.dir.path().join("back.bin");
    env.ok(&[
        "copy-from-vm",
        "vm2",
        "/tmp/big.bin",
        &back.display().to_string(),
    ]);
    assert!(
        std::fs::read(&back).expect("read") == data,
        "the copy through host B changed"
    );

    // status and ansible_hosts name the hosts.
    let status: Value =
        serde_json::from_str(&env.ok(&["--out-format", "json", "status"])).expect("status json");
    let vms = &status["Prefix"]["VMs"];
    assert_eq!(vms["vm0"]["host"], "default");
    assert_eq!(vms["vm2"]["host"], "hv2");
    assert_eq!(vms["vm2"]["status"], "running");
    let inventory = env.ok(&["ansible_hosts"]);
    let hv2_group = inventory
        .split("[host=hv2]")
        .nth(1)
        .expect("a [host=hv2] group");
    let first = hv2_group.lines().nth(1).unwrap_or("");
    assert!(first.starts_with("vm2 "), "{inventory}");
    assert!(
        first.contains(&format!("-J root@{}", b_addr())),
        "{inventory}"
    );

    env.ok(&["destroy", "-y"]);
    assert!(a_objects().is_empty(), "left on host A: {:?}", a_objects());
    assert!(b_objects().is_empty(), "left on host B: {:?}", b_objects());
    assert!(env.leases().is_empty(), "leases left: {:?}", env.leases());
    // Only the shared templates stay on B: each `<sha1>.<format>` with its
    // `<sha1>.done` marker.
    let vols = virsh_at(&b_url(), &["vol-list", "lago-templates"]);
    let names: Vec<&str> = vols
        .iter()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for n in &names {
        let (sha, ext) = n.split_once('.').expect("name.ext");
        assert_eq!(sha.len(), 40, "{names:?}");
        let pair = if ext == "done" {
            format!("{sha}.qcow2")
        } else {
            format!("{sha}.done")
        };
        assert!(
            names.contains(&pair.as_str()),
            "{n} without {pair}: {names:?}"
        );
    }

    // A later environment finds the template on B and sends only its seed.
    let again = Env::new(&initfile(&b_url()));
    let _cleanup_again = Destroy(&again);
    again.ok(&["init", "--template-repo-name", "embedded"]);
    let log =
        std::fs::read_to_string(again.workdir().join("default/logs/lago.log")).expect("prefix log");
    assert!(log.contains("is on host hv2 already"), "{log}");
    assert!(!log.contains("uploading template"), "{log}");
    again.ok(&["destroy", "-y"]);
    assert!(b_objects().is_empty(), "left on host B: {:?}", b_objects());
}

#[test]
fn multihost_unreachable_host_fails_init_and_leaves_nothing() {
    let _hosts = hosts();
    // An address on the link between the hosts that nobody has.
    let url = b_url().replace(&b_addr(), "10.250.7.9");
    let env = Env::new(&initfile(&url));
    let out = env.lago(&["init", "--template-repo-name", "embedded"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("host hv2"), "{err}");
    assert!(err.contains("10.250.7.9"), "{err}");
    assert!(!env.workdir().exists(), "a prefix was left");
    assert!(env.leases().is_empty(), "{:?}", env.leases());
}

#[test]
fn multihost_kill_during_start_then_destroy_leaves_nothing() {
    let _hosts = hosts();
    let env = Env::new(&initfile(&b_url()));
    let _cleanup = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let mut child = env
        .cmd()
        .arg("start")
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lago start");
    // Until vm2 exists on host B (its disks and tunnel are up), then -9.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while virsh_at(&b_url(), &["list", "--name"]).is_empty() {
        assert!(std::time::Instant::now() < deadline, "vm2 never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    env.ok(&["destroy", "-y"]);
    assert!(a_objects().is_empty(), "left on host A: {:?}", a_objects());
    assert!(b_objects().is_empty(), "left on host B: {:?}", b_objects());
    assert!(env.leases().is_empty(), "{:?}", env.leases());
}

#[test]
fn multihost_failed_init_removes_what_it_sent_to_host_b() {
    let _hosts = hosts();
    // vm2's disk goes to host B, then vm3's file disk cannot be read.
    let init = initfile(&b_url()).replace(
        "nets:\n",
        "  vm3:\n    <<: *vm\n    host: hv2\n    nics: [{net: lago}]\n    disks:\n      - {type: file, name: data, path: /nonexistent/data.qcow2, dev: vda, format: qcow2}\nnets:\n",
    );
    let env = Env::new(&init);
    let out = env.lago(&["init", "--template-repo-name", "embedded"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("/nonexistent/data.qcow2"), "{err}");
    assert!(!env.workdir().exists(), "a prefix was left");
    assert!(env.leases().is_empty(), "{:?}", env.leases());
    assert!(b_objects().is_empty(), "left on host B: {:?}", b_objects());
    assert!(a_objects().is_empty(), "left on host A: {:?}", a_objects());
}
