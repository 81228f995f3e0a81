//! Warm starts with real VMs (inside the VM sandbox): VMs restored from
//! their template's warm image, each with its own identity; run once in CI
//! (scripts/test.sh), on the embedded template built with its identity agent.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lago_e2e::{libvirt_objects, text, Destroy, Env};

const THREE_VMS: &str = r#"
x-vm: &vm
  memory: 256
  vcpu: 1
  nics: [{net: mgmt}]
  disks:
    - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
domains:
  vm0: *vm
  vm1: *vm
  vm2: *vm
nets:
  mgmt: {type: nat, management: true}
"#;

const ONE_VM: &str = r#"
domains:
  solo:
    memory: 256
    vcpu: 1
    nics: [{net: mgmt}]
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
nets:
  mgmt: {type: nat, management: true}
"#;

/// `lago init` on the embedded repository of this run (LAGO_EMBEDDED_REPO):
/// by its repo file, since several repositories named `embedded` may sit
/// side by side in the repos folder.
fn init(env: &Env) {
    let repo = lago_e2e::embedded_repo().join("repo.json");
    env.ok(&["init", "--template-repo-path", &repo.display().to_string()]);
}

fn status(env: &Env) -> serde_json::Value {
    env.status_json()
}

fn last_start(env: &Env, vm: &str) -> String {
    status(env)["Prefix"]["VMs"][vm]["last start"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn sh(env: &Env, vm: &str, script: &str) -> String {
    env.ok(&["shell", vm, "sh", "-c", script])
        .trim()
        .to_string()
}

fn lago_log(env: &Env) -> String {
    let mut all = String::new();
    for entry in walk(&env.workdir()) {
        if entry.file_name().is_some_and(|n| n == "lago.log") {
            all.push_str(&std::fs::read_to_string(&entry).unwrap_or_default());
        }
    }
    all
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The warm images in a template store: `<template>.warm/<key>` folders.
fn warm_images(store: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(store).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".warm") {
            for img in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                let p = img.path();
                if p.is_dir() && p.extension().is_none() {
                    found.push(p);
                }
            }
        }
    }
    found
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[test]
fn warm_three_vms_each_with_its_own_identity() {
    let env = Env::new(THREE_VMS);
    let _destroy = Destroy(&env);
    init(&env);
    env.ok(&["start"]);
    let tree = status(&env);
    let vms = ["vm0", "vm1", "vm2"];
    let mut seen = std::collections::BTreeSet::new();
    for vm in vms {
        let v = &tree["Prefix"]["VMs"][vm];
        assert_eq!(v["last start"], "warm", "{vm}: {v}");
        assert_eq!(v["ssh host key"], "pinned", "{vm}: {v}");
        assert_eq!(v["status"], "running");
        let planned_ip = v["NICs"]["eth0"]["ip"].as_str().expect("ip").to_string();
        // hostname, MAC, address, machine-id, host key: all its own
        let out = sh(
            &env,
            vm,
            "hostname; cat /sys/class/net/eth0/address; \
             ip -4 -o addr show dev eth0 | awk '{print $4}'; cat /etc/machine-id; \
             cat /run/lago/hostkeys.pub | grep ssh-",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert_eq!(lines[0], vm);
        assert_eq!(
            lines[2],
            format!("{planned_ip}/24"),
            "{vm} has its planned IP"
        );
        assert_eq!(lines[3].len(), 32, "machine-id {}", lines[3]);
        for item in &lines[1..] {
            assert!(seen.insert(item.to_string()), "{vm}: {item} is not unique");
        }
        // the MAC is the one lago planned for the domain
        let xml = lago_e2e::virsh(&["dumpxml", &format!("{}-{vm}", prefix_tag(&env))]).join("\n");
        assert!(
            xml.contains(&format!("<mac address='{}'/>", lines[1])),
            "{xml}"
        );
        // the guest's clock is the host's
        let before = now();
        let guest: f64 = sh(&env, vm, "date +%s").parse().expect("date");
        let after = now();
        assert!(
            guest >= before.floor() - 2.0 && guest <= after + 2.0,
            "{vm}: guest clock {guest}, host {before}..{after}"
        );
    }
    // they reach each other by DNS name
    for (from, to) in [("vm0", "vm1"), ("vm1", "vm2"), ("vm2", "vm0")] {
        sh(
            &env,
            from,
            &format!("ping -c 1 -W 5 {to} >/dev/null && echo ok"),
        );
    }
    // the template's address or MAC never stays: each VM has one address
    assert_eq!(sh(&env, "vm0", "ip -4 -o addr show dev eth0 | wc -l"), "1");

    // a file written, then stop + cold start: still there
    sh(&env, "vm1", "echo warm-mark > /root/mark && sync");
    env.ok(&["stop", "vm1"]);
    env.ok(&["start", "vm1"]);
    assert_eq!(last_start(&env, "vm1"), "cold");
    assert_eq!(sh(&env, "vm1", "cat /root/mark"), "warm-mark");
    assert!(lago_log(&env).contains("VM vm1: cold start (its disk has been used since init"));

    // snapshot and revert
    sh(&env, "vm0", "echo one > /root/snap && sync");
    env.ok(&["snapshot", "s1"]);
    sh(&env, "vm0", "echo two > /root/snap && sync");
    env.ok(&["revert", "s1"]);
    assert_eq!(sh(&env, "vm0", "cat /root/snap"), "one");

    let tag = prefix_tag(&env);
    env.ok(&["destroy", "-y"]);
    assert!(
        !libvirt_objects()
            .iter()
            .any(|o| o.starts_with(&tag) || o.starts_with("lago-warm-")),
        "{:?}",
        libvirt_objects()
    );
}

/// The prefix's tag (first 8 characters of its uuid), which starts the
/// names of its libvirt objects.
fn prefix_tag(env: &Env) -> String {
    let uuid = status(env)["Prefix"]["UUID"]
        .as_str()
        .expect("uuid")
        .to_string();
    uuid[..8].to_string()
}

#[test]
fn warm_prefixes_share_one_image_and_a_changed_template_makes_another() {
    let a = Env::new(ONE_VM);
    let mut b = Env::new(ONE_VM);
    // one template store (one warm image), one lease store (two subnets)
    b.store_dir = a.store_dir.clone();
    b.lease_dir = a.lease_dir.clone();
    let _da = Destroy(&a);
    let _db = Destroy(&b);
    init(&a);
    init(&b);
    // both at once: one makes the warm image, the other waits for it
    std::thread::scope(|s| {
        let ta = s.spawn(|| a.lago(&["start"]));
        let tb = s.spawn(|| b.lago(&["start"]));
        for t in [ta, tb] {
            let out = t.join().expect("thread");
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    });
    assert_eq!(last_start(&a, "solo"), "warm");
    assert_eq!(last_start(&b, "solo"), "warm");
    let images = warm_images(&a.store_dir);
    assert_eq!(images.len(), 1, "{images:?}");
    assert_ne!(
        sh(&a, "solo", "cat /etc/machine-id"),
        sh(&b, "solo", "cat /etc/machine-id")
    );
    a.ok(&["destroy", "-y"]);
    b.ok(&["destroy", "-y"]);

    // the template "rebuilt" (after init, the store records another sha1
    // for it; init itself would import the published one again): a new image
    let mut c = Env::new(ONE_VM);
    c.store_dir = a.store_dir.clone();
    c.lease_dir = a.lease_dir.clone();
    let _dc = Destroy(&c);
    init(&c);
    let hash = walk(&a.store_dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".hash"))
        .expect("the store's .hash record");
    std::fs::write(&hash, "0123456789abcdef0123456789abcdef01234567\n").expect("write hash");
    c.ok(&["start"]);
    assert_eq!(last_start(&c, "solo"), "warm");
    assert_eq!(warm_images(&a.store_dir).len(), 2);
}

#[test]
fn warm_cold_when_it_cannot_be_warm_and_with_cold() {
    // a VM on an image outside the template store, one with warm starts off
    let env = Env::new(ONE_VM);
    let _destroy = Destroy(&env);
    init(&env);
    env.ok(&["start", "--cold"]);
    assert_eq!(last_start(&env, "solo"), "cold");
    let log = lago_log(&env);
    assert!(
        log.contains("VM solo: cold start (warm starts are off"),
        "{log}"
    );
    assert!(warm_images(&env.store_dir).is_empty());

    let foreign = env.dir.path().join("foreign.qcow2");
    let template = walk(&env.store_dir)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("lago-tiny") && p.extension().is_none())
        .expect("template in the store");
    std::fs::copy(&template, &foreign).expect("copy template");
    let init = format!(
        r#"
domains:
  other:
    memory: 256
    vcpu: 1
    nics: [{{net: mgmt}}]
    disks:
      - {{type: file, name: root, dev: vda, format: qcow2, path: {}}}
nets:
  mgmt: {{type: nat, management: true}}
"#,
        foreign.display()
    );
    let mut f = Env::new(&init);
    f.lease_dir = env.lease_dir.clone();
    let _df = Destroy(&f);
    f.ok(&["init"]);
    f.ok(&["start"]);
    assert_eq!(last_start(&f, "other"), "cold");
    assert!(
        lago_log(&f).contains("VM other: cold start (its disk 'root' is not a template overlay")
    );
}

/// `lago start` in the background, its output dropped.
fn spawn_start(env: &Env) -> std::process::Child {
    env.cmd()
        .arg("start")
        .command()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lago start")
}

/// SIGKILL to `child` (no clean-up of its own), then reaps it.
fn kill_hard(mut child: std::process::Child) {
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
}

#[test]
fn warm_killed_while_making_the_image_leaves_nothing() {
    let env = Env::new(ONE_VM);
    let _destroy = Destroy(&env);
    init(&env);
    let child = spawn_start(&env);
    // until the warm image is being made (its boot domain runs)
    let mut baking = false;
    for _ in 0..1200 {
        if libvirt_objects()
            .iter()
            .any(|o| o.starts_with("lago-warm-"))
        {
            baking = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(baking, "no warm image boot seen");
    kill_hard(child);
    // AUTODESTROY: libvirt removes the boot domain with lago's connection
    let mut gone = false;
    for _ in 0..100 {
        if !libvirt_objects()
            .iter()
            .any(|o| o.starts_with("lago-warm-"))
        {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "{:?}", libvirt_objects());
    // the next start makes the image from scratch and starts warm
    env.ok(&["start"]);
    assert_eq!(last_start(&env, "solo"), "warm");
    let staging: Vec<_> = walk(&env.store_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp"))
        .collect();
    assert!(staging.is_empty(), "{staging:?}");

    // Killed while restoring (the image exists): the half-restored domain
    // has no identity; the next command finds the start abandoned, removes
    // the domain and puts the fresh disk back, and `start` starts it warm.
    env.ok(&["destroy", "-y"]);
    init(&env);
    let marker = env.workdir().join("default/images/solo.warm-restoring");
    let child = spawn_start(&env);
    let mut restoring = false;
    for _ in 0..1200 {
        if marker.exists() {
            restoring = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(restoring, "no warm restore seen");
    kill_hard(child);
    assert_eq!(status(&env)["Prefix"]["VMs"]["solo"]["status"], "down");
    assert!(!marker.exists());
    assert!(lago_log(&env).contains("a warm start was interrupted"));
    env.ok(&["start"]);
    assert_eq!(last_start(&env, "solo"), "warm");
    assert_eq!(sh(&env, "solo", "hostname"), "solo");
}
