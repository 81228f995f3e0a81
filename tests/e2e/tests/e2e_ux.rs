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

/// A pseudo-terminal pair: (master, slave).
fn openpty() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors into the given integers;
    // the other arguments may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

#[test]
fn on_a_terminal_start_shows_each_vms_stage() {
    use std::io::Read;
    let env = Env::new(ONE_VM);
    let _destroy = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let (master, slave) = openpty();
    let mut child = std::process::Command::new(lago_e2e::target_dir().join("lago"))
        .arg("start")
        .current_dir(env.dir.path())
        .env("LAGO__LAGO__LEASE_DIR", &env.lease_dir)
        .env("LAGO__INIT__TEMPLATE_STORE", &env.store_dir)
        .env("LAGO__LAGO__DOMAIN_TYPE", "qemu")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(slave))
        .spawn()
        .expect("spawn lago");
    // Read while it runs: the live view writes more than a pty buffers.
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once no slave is open.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    assert!(child.wait().expect("wait").success());
    drop(child);
    let seen = text(&reader.join().expect("reader"));
    assert!(seen.contains("@ Start Prefix: "), "{seen:?}");
    assert!(
        seen.contains("vm0: booting, waiting for SSH at 192.168."),
        "the VM's stage: {seen:?}"
    );
    assert!(seen.contains("\x1b[32mSuccess (in 0:0"), "{seen:?}");
}
