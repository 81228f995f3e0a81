//! `lago ansible_hosts` through the binary on a stored environment (no
//! hypervisor needed: the inventory comes from the stored spec).

mod common;

use std::path::Path;

use common::lib_init;
use lago::prefix::Prefix;
use lago_plugin_api::spec::EnvSpec;
use lago_test_support::{lago_bin, Project};

const INIT: &str = r#"
x-vm: &vm
  memory: 256
  disks:
    - {type: template, template_name: tiny, dev: vda, metadata: {arch: x86_64}}
domains:
  vm0-server:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [servers]
  vm1-slave:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [slaves]
  vm2-slave:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [slaves, extra]
    disks:
      - {type: template, template_name: tiny, dev: vda, metadata: {arch: ppc64le}}
nets:
  mgmt: {type: nat, management: true}
"#;

/// A project holding [`INIT`].
fn project() -> Project {
    Project::with_init(lago_bin!(), INIT)
}

/// `lago init` through the library, with no provider work.
fn init(p: &Project) -> (Prefix, EnvSpec) {
    lib_init(
        &p.proj().join("LagoInitFile"),
        &p.wd(),
        &p.leases(),
        "default",
    )
}

fn line(env: &EnvSpec, vm: &str, key: &Path) -> String {
    let ip = env.domains[vm].mgmt_ip().expect("planned address");
    format!(
        "{vm} ansible_host={ip} ansible_ssh_private_key_file={}",
        key.display()
    )
}

#[test]
fn ansible_hosts_default_keys_as_lago_prints_them() {
    let p = project();
    let (_prefix, env) = init(&p);
    let key = env.prefix.ssh_key_path();
    let (l0, l1, l2) = (
        line(&env, "vm0-server", &key),
        line(&env, "vm1-slave", &key),
        line(&env, "vm2-slave", &key),
    );
    let out = p.ok(&["ansible_hosts"]);
    let want = [
        "[vm-type=default]".to_string(),
        l0.clone(),
        l1.clone(),
        l2.clone(),
        "[groups=servers]".into(),
        l0.clone(),
        "[vm-provider=local-libvirt]".into(),
        l0.clone(),
        l1.clone(),
        l2.clone(),
        "[servers]".into(),
        l0,
        "[groups=slaves]".into(),
        l1.clone(),
        l2.clone(),
        "[slaves]".into(),
        l1,
        l2.clone(),
        "[groups=extra]".into(),
        l2.clone(),
        "[extra]".into(),
        l2,
    ]
    .join("\n")
        + "\n";
    assert_eq!(out, want);
}

#[test]
fn ansible_hosts_nested_keys_and_json() {
    let p = project();
    let (_prefix, env) = init(&p);
    let key = env.prefix.ssh_key_path();
    let out = p.ok(&["ansible_hosts", "-k", "disks/0/metadata/arch", "nope"]);
    assert!(
        out.starts_with(&format!(
            "[disks/0/metadata/arch=x86_64]\n{}\n{}\n[servers]\n",
            line(&env, "vm0-server", &key),
            line(&env, "vm1-slave", &key)
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "[disks/0/metadata/arch=ppc64le]\n{}\n",
            line(&env, "vm2-slave", &key)
        )),
        "{out}"
    );
    assert!(!out.contains("nope"), "{out}");

    let json = p.ok(&["-f", "json", "ansible_hosts", "--keys", "vm-type"]);
    let tree: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        tree["vm-type=default"].as_array().map(Vec::len),
        Some(3),
        "{tree:#}"
    );
    assert_eq!(
        tree["slaves"],
        serde_json::json!([line(&env, "vm1-slave", &key), line(&env, "vm2-slave", &key)])
    );
}

#[test]
fn ansible_hosts_needs_an_initialized_prefix() {
    let p = project();
    let out = p.lago(&["ansible_hosts"]);
    assert_eq!(out.status.code(), Some(2), "a user error");
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

/// Issue 18 (finding 6): `-k` given again is accepted as Lago's
/// `nargs='*'` took it: the last `-k` (with all its keys) wins.
#[test]
fn ansible_hosts_repeated_keys_option_last_wins() {
    let p = project();
    init(&p);
    let last = p.ok(&["ansible_hosts", "-k", "groups"]);
    assert!(last.contains("[groups=servers]"), "{last}");
    assert_eq!(
        p.ok(&["ansible_hosts", "-k", "vm-type", "-k", "groups"]),
        last
    );
    let both = p.ok(&["ansible_hosts", "-k", "vm-type", "groups"]);
    assert!(
        both.contains("[vm-type=default]") && both.contains("[groups=servers]"),
        "{both}"
    );
    assert_eq!(
        p.ok(&["ansible_hosts", "-k", "nope", "-k", "vm-type", "groups"]),
        both
    );
}
