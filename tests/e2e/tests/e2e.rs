//! Real VMs, end to end: `scripts/test.sh` runs this inside the VM sandbox.

use lago_e2e::{libvirt_objects, Destroy, Env};

const THREE_VMS: &str = r#"
x-vm: &vm
  memory: 256
  vcpu: 1
  disks:
    - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
domains:
  vm0:
    <<: *vm
    nics: [{net: mgmt}, {net: data}]
  vm1:
    <<: *vm
    nics: [{net: mgmt}, {net: data}]
  vm2:
    <<: *vm
    nics: [{net: mgmt}]
nets:
  mgmt: {type: nat, management: true, dns_domain_name: lago.local}
  data: {type: nat}
"#;

fn vm_status(env: &Env) -> serde_json::Value {
    let tree = env.status_json();
    let prefix = tree.get("Prefix").unwrap_or(&tree).clone();
    prefix
}

#[test]
fn three_vms_two_networks_full_lifecycle() {
    let env = Env::new(THREE_VMS);
    let _destroy = Destroy(&env);
    let before = libvirt_objects();
    env.ok(&["init", "--template-repo-name", "embedded"]);
    env.ok(&["start"]);

    // Every VM answers SSH with its own name.
    for vm in ["vm0", "vm1", "vm2"] {
        let out = env.ok(&["shell", vm, "hostname"]);
        assert_eq!(out.trim(), vm);
    }
    // VM to VM by DNS name over the management net.
    env.ok(&[
        "shell",
        "vm1",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        "vm0.lago.local",
    ]);
    env.ok(&["shell", "vm2", "ping", "-c", "1", "-W", "5", "vm1"]);

    let status = vm_status(&env);
    for vm in ["vm0", "vm1", "vm2"] {
        assert_eq!(status["VMs"][vm]["status"], "running", "{status:#}");
    }
    for net in ["mgmt", "data"] {
        assert_eq!(status["Networks"][net]["status"], "up", "{status:#}");
    }
    let vm0_nics = &status["VMs"]["vm0"]["NICs"];
    assert_eq!(vm0_nics["eth0"]["network"], "mgmt", "{status:#}");
    assert_eq!(vm0_nics["eth1"]["network"], "data", "{status:#}");

    // start on a running environment is a no-op.
    env.ok(&["start"]);

    // Hard stop: transient domains disappear, so the VMs are down.
    env.ok(&["stop"]);
    let status = vm_status(&env);
    for vm in ["vm0", "vm1", "vm2"] {
        assert_eq!(status["VMs"][vm]["status"], "down", "{status:#}");
    }
    // And up again, from the same disks.
    env.ok(&["start", "vm2"]);
    assert_eq!(env.ok(&["shell", "vm2", "hostname"]).trim(), "vm2");
    let status = vm_status(&env);
    assert_eq!(status["VMs"]["vm2"]["status"], "running");
    assert_eq!(status["VMs"]["vm0"]["status"], "down");

    // Graceful shutdown.
    env.ok(&["shutdown", "vm2"]);
    assert_eq!(vm_status(&env)["VMs"]["vm2"]["status"], "down");

    env.ok(&["destroy", "-y"]);
    assert_eq!(
        libvirt_objects(),
        before,
        "destroy leaves no domain or network"
    );
    assert!(env.leases().is_empty(), "leases left: {:?}", env.leases());
}

#[test]
fn failed_start_names_the_vm_and_cleans_up_on_destroy() {
    // A VM whose disk boots nothing: start must fail naming it, and destroy
    // must still remove everything.
    let initfile = r#"
domains:
  good:
    memory: 256
    disks: [{template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}]
    nics: [{net: n}]
  blank:
    memory: 128
    boot_time_sec: 1
    disks: [{type: empty, name: root, dev: vda, format: qcow2, size: 16M}]
    nics: [{net: n}]
nets:
  n: {type: nat}
"#;
    let env = Env::new(initfile);
    let _destroy = Destroy(&env);
    let before = libvirt_objects();
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let out = env.lago(&["--ssh-tries", "3", "--ssh-timeout", "2", "start"]);
    assert!(!out.status.success(), "start of an unbootable VM fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("blank"), "error names the VM: {err}");
    env.ok(&["destroy", "-y"]);
    assert_eq!(libvirt_objects(), before);
    assert!(env.leases().is_empty(), "leases left: {:?}", env.leases());
}
