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
    for want in [
        "  # Start nets: ",
        "  # Start vms: ",
        "    * Starting VM vm0: ",
    ] {
        assert!(lines.contains(&want), "{want:?} in {err}");
    }
    for closed in [
        "  # Start nets: Success (in ",
        "    * Starting VM vm0: Success (in ",
        "  # Start vms: Success (in ",
        "@ Start Prefix: Success (in ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(closed)),
            "{closed:?} in {err}"
        );
    }
    assert!(!err.contains(['\x1b', '\r']), "plain lines: {err:?}");
    // --logdepth 1: the top level only.
    let out = env.lago(&["--logdepth", "1", "start"]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .all(|l| l.starts_with("@ ") || !l.starts_with(' ')),
        "{err}"
    );

    // While vm0 reboots, `shell` waits for its SSH instead of failing.
    // `shutdown -r` returns once the console shows the old boot's end
    // (the kernel's `reboot: ` line) or the new one's kernel start.
    let console = env.dir.path().join(".lago/default/logs/vm0.console.log");
    let boundaries = || {
        std::fs::read(&console)
            .map(|b| {
                let text = String::from_utf8_lossy(&b).to_lowercase();
                text.matches("reboot: ").count() + text.matches("linux version ").count()
            })
            .unwrap_or(0)
    };
    let before = boundaries();
    env.ok(&["shutdown", "-r", "vm0"]);
    assert!(
        boundaries() > before,
        "the reboot has begun when shutdown -r returns"
    );
    let out = env.ok(&["shell", "vm0", "hostname"]);
    assert_eq!(out.trim(), "vm0");
    // Console text from before a verb's wait is not judged: a guest that
    // writes a panic line to its console is still reached.
    env.ok(&[
        "shell",
        "vm0",
        "sh",
        "-c",
        "echo 'Kernel panic - not syncing: written by the guest' > /dev/console",
    ]);
    let out = env.ok(&["shell", "vm0", "echo", "reached"]);
    assert_eq!(out.trim(), "reached");
    let log = std::fs::read_to_string(env.dir.path().join(".lago/default/logs/lago.log"))
        .expect("prefix log");
    assert!(log.contains("start task Start Prefix"), "{log}");
}

#[test]
fn on_a_terminal_start_shows_each_vms_stage() {
    let env = Env::new(ONE_VM);
    let _destroy = Destroy(&env);
    let start_on_pty = |args: &[&str]| {
        lago_test_support::Lago::new(lago_e2e::target_dir().join("lago"))
            .args(args)
            .cwd(env.dir.path())
            .env("LAGO__LAGO__LEASE_DIR", &env.lease_dir)
            .env("LAGO__INIT__TEMPLATE_STORE", &env.store_dir)
            .env("LAGO__LAGO__DOMAIN_TYPE", "qemu")
            .output_on_pty()
    };
    // The first start in a fresh store: the warm image is made, then the VM
    // is restored and given its identity, never "booting".
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let (status, seen) = start_on_pty(&["start"]);
    assert!(status.success());
    assert!(seen.contains("@ Start Prefix: "), "{seen:?}");
    for stage in [
        "vm0: making the warm image",
        "vm0: restoring",
        "vm0: identity",
        "vm0: waiting for SSH at 192.168.",
    ] {
        assert!(seen.contains(stage), "the VM's stage {stage:?}: {seen:?}");
    }
    assert!(!seen.contains("vm0: booting"), "{seen:?}");
    assert!(seen.contains("\x1b[32mSuccess (in 0:0"), "{seen:?}");
    // A cold start boots.
    env.ok(&["destroy", "-y"]);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let (status, seen) = start_on_pty(&["start", "--cold"]);
    assert!(status.success());
    assert!(
        seen.contains("vm0: booting, waiting for SSH at 192.168."),
        "the VM's stage: {seen:?}"
    );
    assert!(!seen.contains("vm0: restoring"), "{seen:?}");
}
