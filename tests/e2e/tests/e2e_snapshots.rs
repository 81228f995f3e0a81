//! Snapshots and revert with real VMs (inside the VM sandbox).

use lago_e2e::{text, virsh, Destroy, Env};

const TWO_VMS: &str = r#"
x-vm: &vm
  memory: 256
  vcpu: 1
  nics: [{net: mgmt}]
  disks:
    - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
domains:
  vm0: *vm
  vm1: *vm
nets:
  mgmt: {type: nat, management: true}
"#;

const VMS: [&str; 2] = ["vm0", "vm1"];

/// Writes `content` into /root/mark of every VM (flushed).
fn mark(env: &Env, content: &str) {
    for vm in VMS {
        let script = format!("echo {content} > /root/mark && sync");
        env.ok(&["shell", vm, "sh", "-c", &script]);
    }
}

/// /root/mark of `vm` (empty when missing).
fn read_mark(env: &Env, vm: &str) -> String {
    env.ok(&[
        "shell",
        vm,
        "sh",
        "-c",
        "cat /root/mark 2>/dev/null || true",
    ])
    .trim()
    .to_string()
}

fn uptime(env: &Env, vm: &str) -> f64 {
    let out = env.ok(&["shell", vm, "cat", "/proc/uptime"]);
    out.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("uptime")
}

fn snapshots_json(env: &Env) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["-f", "json", "snapshot", "-l"])).expect("snapshot -l is JSON")
}

fn states(env: &Env) -> Vec<String> {
    let tree = env.status_json();
    VMS.iter()
        .map(|vm| {
            tree["Prefix"]["VMs"][vm]["status"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[test]
fn snapshot_and_revert_running_and_stopped_vms() {
    let env = Env::new(TWO_VMS);
    let _destroy = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    env.ok(&["start"]);

    // Running VMs: the snapshot keeps their memory.
    mark(&env, "one");
    env.ok(&["snapshot", "one"]);
    let up_at_snapshot = uptime(&env, "vm0");
    mark(&env, "two");
    env.ok(&["snapshot", "two"]);
    mark(&env, "changed");

    let list = snapshots_json(&env);
    for vm in VMS {
        for snap in ["one", "two"] {
            let disks = list[vm][snap].as_array().expect("disks");
            assert_eq!(disks.len(), 1, "{list:#}");
            assert_eq!(disks[0]["name"], "root", "{list:#}");
            assert_eq!(disks[0]["dev"], "vda", "{list:#}");
            assert_eq!(disks[0]["memory"], true, "{list:#}");
            assert_eq!(disks[0]["state"], "running", "{list:#}");
            assert!(disks[0]["path"].as_str().is_some(), "{list:#}");
        }
    }
    let status = env.ok(&["status"]);
    assert!(status.contains("snapshots: one, two"), "{status}");

    // A taken name and an unknown one are refused; nothing changes.
    let out = env.lago(&["snapshot", "one"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`one` is already taken"));
    let out = env.lago(&["revert", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no snapshot named `nope`"));
    for vm in VMS {
        assert_eq!(read_mark(&env, vm), "changed");
    }

    // Revert to the older one: the VMs resume from it, without booting.
    env.ok(&["revert", "one"]);
    for vm in VMS {
        assert_eq!(read_mark(&env, vm), "one");
    }
    let up = uptime(&env, "vm0");
    assert!(
        up >= up_at_snapshot,
        "uptime {up} < {up_at_snapshot}: the VM booted"
    );
    assert_eq!(states(&env), ["running", "running"]);
    env.ok(&["revert", "two"]);
    for vm in VMS {
        assert_eq!(read_mark(&env, vm), "two");
    }

    // A snapshot survives stop/start, and a stopped VM reverts to it.
    env.ok(&["stop"]);
    env.ok(&["revert", "one"]);
    assert_eq!(states(&env), ["running", "running"]);
    for vm in VMS {
        assert_eq!(read_mark(&env, vm), "one");
    }

    // Stopped VMs: a disk-only snapshot; revert leaves them down.
    env.ok(&["stop"]);
    env.ok(&["snapshot", "cold"]);
    let list = snapshots_json(&env);
    assert_eq!(list["vm1"]["cold"][0]["memory"], false, "{list:#}");
    assert_eq!(list["vm1"]["cold"][0]["state"], "down", "{list:#}");
    env.ok(&["start"]);
    mark(&env, "after-cold");
    env.ok(&["revert", "cold"]);
    assert_eq!(states(&env), ["down", "down"]);
    env.ok(&["start"]);
    for vm in VMS {
        assert_eq!(read_mark(&env, vm), "one");
    }

    // Only some VMs.
    env.ok(&["snapshot", "-n", "vm1", "only1"]);
    let list = snapshots_json(&env);
    assert!(list["vm1"]["only1"].is_array(), "{list:#}");
    assert!(list["vm0"].get("only1").is_none(), "{list:#}");

    // destroy removes the domains and their snapshot metadata.
    env.ok(&["destroy", "-y"]);
    let left: Vec<String> = virsh(&["list", "--all", "--name"]);
    assert!(
        left.iter()
            .all(|n| !n.ends_with("-vm0") && !n.ends_with("-vm1")),
        "{left:?}"
    );
}
