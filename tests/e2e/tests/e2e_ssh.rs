//! SSH against real VMs: the user's own OpenSSH client through
//! `<prefix>/ssh_config`, a changed host key refused, and the vm-service
//! plugins (systemd, sysvinit) through the library API
//! (`Env::service`) against a guest without a service manager and
//! one given a (fake) `/usr/bin/systemctl`. `scripts/test.sh` runs this
//! inside the VM sandbox.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lago::config::{Config, Sources};
use lago::environment;
use lago::plugins::discovery::SearchPath;
use lago::plugins::Registry;
use lago::prefix::Prefix;
use lago_e2e::{fake_systemctl, target_dir, text, Destroy, Env};
use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::ServiceState;

const ONE_VM: &str = r#"
domains:
  vm0:
    memory: 256
    vcpu: 1
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
    nics: [{net: mgmt}]
nets:
  mgmt: {type: nat, management: true}
"#;

fn prefix_path(env: &Env) -> PathBuf {
    env.dir.path().join(".lago/default")
}

/// Every plugin the `lago` binary would load: the built-ins and the
/// workspace's plugin libraries next to it.
fn registry() -> Registry {
    let mut reg = Registry::builtins().expect("built-in plugins");
    let path = SearchPath::new(None, None, Some(&target_dir()));
    reg.load_all(&path).expect("plugin libraries");
    assert!(
        reg.services.contains_key("systemd") && reg.services.contains_key("sysvinit"),
        "vm-service plugins not found in {}: {:?}",
        target_dir().display(),
        reg.services.keys().collect::<Vec<_>>()
    );
    reg
}

/// The configuration the environments are opened with: defaults, and an
/// SSH budget of 10 tries of 10 s.
fn settings() -> Config {
    let set = |k: &str, v: &str| ("lago".to_string(), k.to_string(), v.to_string());
    Config::load_from(
        &Sources::default(),
        &[set("ssh_tries", "10"), set("ssh_timeout", "10")],
    )
    .expect("config")
}

/// `ssh -F <prefix>/ssh_config ARGS`, non-interactive.
fn openssh(prefix: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("ssh")
        .arg("-F")
        .arg(prefix.join("ssh_config"))
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=30"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ssh (openssh-client, installed by scripts/install-deps.sh)");
    lago_test_support::assert::echo(&format!("ssh -F ssh_config {}", args.join(" ")), &out);
    out
}

#[test]
fn openssh_config_host_key_mismatch_and_services() {
    let env = Env::new(ONE_VM);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    let _destroy = Destroy(&env);
    env.ok(&["start"]);
    let prefix_dir = prefix_path(&env);

    // ---- The user's own OpenSSH client, through the prefix's ssh_config:
    // the prefix key, and the host key pinned at init checked strictly.
    let out = openssh(&prefix_dir, &["vm0", "hostname"]);
    assert!(out.status.success(), "ssh -F failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "vm0");
    let out = openssh(&prefix_dir, &["vm0", "sh", "-c", "'exit 7'"]);
    assert_eq!(out.status.code(), Some(7));

    // ---- vm-service plugins through the library API.
    let reg = registry();
    let prefix = Prefix::open(&prefix_dir).expect("prefix");
    let stored = prefix.load_env().expect("stored environment");
    let stored_libvirt_name = stored.domains["vm0"].libvirt_name.clone();
    let environment =
        environment::Env::from_spec(stored, settings(), &reg).expect("open environment");
    // The embedded template has neither systemctl nor `service`: nothing
    // detected (sysvinit only if the guest has /sbin/service after all).
    let has_service = env
        .lago(&["shell", "vm0", "test", "-e", "/sbin/service"])
        .status
        .success();
    let has_systemctl = env
        .lago(&["shell", "vm0", "test", "-e", "/usr/bin/systemctl"])
        .status
        .success();
    assert!(!has_systemctl, "the embedded template has no systemctl");
    let detected = environment
        .detect_service_provider("vm0")
        .expect("detection");
    assert_eq!(
        detected.as_deref(),
        has_service.then_some("sysvinit"),
        "detection on the embedded template"
    );
    if detected.is_none() {
        let err = environment
            .service("vm0", "sshd")
            .err()
            .expect("no service manager in the guest");
        assert!(err.to_string().contains("no service manager"), "{err}");
        assert_eq!(
            prefix.load_env().expect("load").domains["vm0"].service_provider,
            None,
            "nothing stored when nothing was detected"
        );
    }

    // Give the guest a systemctl (a shell script) and detect again.
    let fake = env.dir.path().join("systemctl");
    std::fs::copy(fake_systemctl(), &fake).expect("copy fake systemctl");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    env.ok(&[
        "copy-to-vm",
        "vm0",
        &fake.display().to_string(),
        "/usr/bin/systemctl",
    ]);
    assert_eq!(
        environment
            .detect_service_provider("vm0")
            .expect("detection")
            .as_deref(),
        Some("systemd")
    );
    let svc = environment.service("vm0", "fakesvc").expect("service");
    assert_eq!(svc.provider(), "systemd");
    assert_eq!(
        prefix.load_env().expect("load").domains["vm0"]
            .service_provider
            .as_deref(),
        Some("systemd"),
        "the detected provider is stored in the prefix"
    );
    assert_eq!(svc.state().expect("state"), ServiceState::Inactive);
    svc.start().expect("start");
    assert_eq!(svc.state().expect("state"), ServiceState::Active);
    svc.stop().expect("stop");
    assert_eq!(svc.state().expect("state"), ServiceState::Inactive);
    let missing = environment.service("vm0", "nosuch").expect("service");
    assert_eq!(missing.state().expect("state"), ServiceState::Missing);
    let err = missing
        .start()
        .expect_err("starting a unit that does not exist");
    assert!(err.to_string().contains("nosuch"), "{err}");

    // ---- Host services per environment: a second environment (its own
    // prefix, key and known_hosts) open in the same process. A vm-service
    // plugin's SSH for a VM of each reaches that VM's environment, whichever
    // was opened last.
    let mut other = Env::new(ONE_VM);
    // One lease store for both: their networks share the sandbox.
    other.lease_dir = env.lease_dir.clone();
    other.ok(&["init", "--template-repo-name", "embedded"]);
    let _destroy_other = Destroy(&other);
    other.ok(&["start"]);
    let other_fake = other.dir.path().join("systemctl");
    std::fs::copy(fake_systemctl(), &other_fake).expect("copy fake systemctl");
    std::fs::set_permissions(&other_fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    other.ok(&[
        "copy-to-vm",
        "vm0",
        &other_fake.display().to_string(),
        "/usr/bin/systemctl",
    ]);
    let other_stored = Prefix::open(&prefix_path(&other))
        .expect("second prefix")
        .load_env()
        .expect("second stored environment");
    assert_ne!(
        other_stored.domains["vm0"].libvirt_name, stored_libvirt_name,
        "two prefixes, two libvirt names"
    );
    let other_environment = environment::Env::from_spec(other_stored, settings(), &reg)
        .expect("open the second environment");
    other_environment
        .service("vm0", "fakesvc")
        .expect("service of the second environment")
        .start()
        .expect("start in the second environment's VM");
    // The first environment's VM, after the second was opened: its own key.
    let svc = environment.service("vm0", "fakesvc").expect("service");
    assert_eq!(
        svc.state().expect("state through the first environment"),
        ServiceState::Inactive
    );
    svc.start().expect("start in the first environment's VM");
    svc.stop().expect("stop");
    assert_eq!(
        other_environment
            .service("vm0", "fakesvc")
            .expect("service")
            .state()
            .expect("state through the second environment"),
        ServiceState::Active,
        "each VM keeps its own state"
    );
    drop(other_environment);
    // Closed: the first environment still answers for its VM.
    assert_eq!(svc.state().expect("state"), ServiceState::Inactive);
    drop(svc);
    drop(environment);

    // ---- A host key other than the pinned one is refused, and says so. Only
    // a template that pins the key lago made at init (lago-tiny) uses the
    // stored `ssh_host_key`; one that makes its own key at first boot has
    // it learned (checked below with known_hosts).
    let pinned = lago_e2e::expected_host_key_status() == "pinned";
    let other = std::fs::read_to_string(prefix_dir.join("id_ed25519.pub")).expect("a key");
    let vm_file = prefix_dir.join("virt/vms/vm0.json");
    if pinned {
        let original = std::fs::read(&vm_file).expect("read the stored VM");
        let mut vm: VmSpec = serde_json::from_slice(&original).expect("VM spec");
        assert_ne!(vm.ssh_host_key.as_deref(), Some(other.trim()));
        vm.ssh_host_key = Some(other.trim().to_string());
        std::fs::write(&vm_file, serde_json::to_vec(&vm).expect("json")).expect("write VM");
        let out = env.lago(&["shell", "vm0", "hostname"]);
        assert!(!out.status.success(), "connected despite a wrong host key");
        let err = text(&out.stderr);
        assert!(
            err.contains("host key") && err.contains("does not match"),
            "{err}"
        );
        assert!(!text(&out.stdout).contains("vm0"), "{}", text(&out.stdout));
        // The right key back: connecting works again.
        std::fs::write(&vm_file, &original).expect("restore VM");
        assert_eq!(env.ok(&["shell", "vm0", "hostname"]).trim(), "vm0");
    }

    // ---- status says how the key is checked: pinned at init (lago-tiny), or
    // learned from the VM's console (a template that makes its own key).
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["--out-format", "json", "status"])).expect("status json");
    assert_eq!(
        status["Prefix"]["VMs"]["vm0"]["ssh host key"],
        lago_e2e::expected_host_key_status(),
        "{status}"
    );
    if !pinned {
        // A learned key is held: another key recorded for the VM's address
        // (as if the VM had been replaced) is refused.
        let kh = prefix_dir.join("known_hosts");
        let learned = std::fs::read_to_string(&kh).expect("known_hosts");
        let ip = learned
            .split_whitespace()
            .next()
            .expect("an entry")
            .to_string();
        let mut fields = other.split_whitespace();
        let alg = fields.next().expect("alg");
        let b64 = fields.next().expect("b64");
        std::fs::write(&kh, format!("{ip} {alg} {b64} lago:console\n")).expect("write");
        let out = env.lago(&["shell", "vm0", "hostname"]);
        assert!(
            !out.status.success(),
            "connected despite a changed host key"
        );
        assert!(
            text(&out.stderr).contains("does not match"),
            "{}",
            text(&out.stderr)
        );
        std::fs::write(&kh, learned).expect("restore known_hosts");
    }

    // ---- bash, as on Lago's templates: root's shell, and #!/bin/bash works.
    let version = env.ok(&["shell", "vm0", "echo ${BASH_VERSION%%.*}"]);
    assert!(
        version.trim().parse::<u32>().is_ok_and(|v| v >= 4),
        "root's shell is not bash: {version:?}"
    );
    let script = env.dir.path().join("bash-script.sh");
    std::fs::write(
        &script,
        "#!/bin/bash\nset -euo pipefail\narr=(a b c)\necho \"${#arr[@]}\"\n",
    )
    .expect("write script");
    env.ok(&[
        "copy-to-vm",
        "vm0",
        &script.display().to_string(),
        "/root/s.sh",
    ]);
    assert_eq!(
        env.ok(&["shell", "vm0", "chmod +x /root/s.sh && /root/s.sh"])
            .trim(),
        "3"
    );
}
