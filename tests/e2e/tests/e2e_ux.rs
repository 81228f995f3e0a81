//! The operator's view of a real start (in the VM sandbox): the task tree
//! on stderr without a terminal, and verbs that work inside a VM waiting
//! for its SSH while it reboots.

use lago_e2e::{text, Destroy, Env};

const ONE_VM: &str = r#"
domains:
  vm0:
    memory: 256
    vcpu: 1
    nics: [{net: mgmt}]
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
nets:
  mgmt: {type: nat, management: true}
"#;

#[test]
fn start_shows_the_task_tree_and_shell_waits_for_a_rebooting_vm() {
    let env = Env::new(ONE_VM);
    let _destroy = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);

    let out = env.lago(&["start"]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.first(), Some(&"@ Start Prefix: "), "{err}");
    for want in ["  # Start nets: ", "  # Start vms: ", "    * Starting VM vm0: "] {
        assert!(lines.contains(&want), "{want:?} in {err}");
    }
    for closed in [
        "  # Start nets: Success (in ",
        "    * Starting VM vm0: Success (in ",
        "  # Start vms: Success (in ",
        "@ Start Prefix: Success (in ",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(closed)), "{closed:?} in {err}");
    }
    assert!(!err.contains(['\x1b', '\r']), "plain lines: {err:?}");
    // --logdepth 1: the top level only.
    let out = env.lago(&["--logdepth", "1", "start"]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.lines().all(|l| l.starts_with("@ ") || !l.starts_with(' ')),
        "{err}"
    );

    // While vm0 reboots, `shell` waits for its SSH instead of failing.
    env.ok(&["shutdown", "-r", "vm0"]);
    let out = env.ok(&["shell", "vm0", "hostname"]);
    assert_eq!(out.trim(), "vm0");
    let log = std::fs::read_to_string(env.dir.path().join(".lago/default/logs/lago.log"))
        .expect("prefix log");
    assert!(log.contains("start task Start Prefix"), "{log}");
}
