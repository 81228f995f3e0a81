//! The library API (`lago::sdk`) against real VMs: init from a 2-VM init
//! file, start, SSH, copies, a service, the inventory and the status the CLI
//! prints, `load_env` of what another process sees, the documented errors,
//! and a destroy that leaves nothing. `scripts/test.sh` runs this inside the
//! VM sandbox.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use lago::sdk::{self, InitOptions, SdkError};
use lago_e2e::{fake_systemctl, libvirt_objects, text, Destroy, Env};

const TWO_VMS: &str = r#"
x-vm: &vm
  memory: 256
  vcpu: 1
  disks:
    - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
domains:
  vm01:
    <<: *vm
    nics: [{net: mgmt}]
    groups: [web]
  vm02:
    <<: *vm
    nics: [{net: mgmt}, {net: back}]
    groups: [db]
nets:
  mgmt: {type: nat, management: true}
  back: {type: nat}
"#;

fn init_options(env: &Env) -> InitOptions {
    InitOptions {
        template_repo_name: Some("embedded".into()),
        load: env.sdk_options(),
        ..InitOptions::default()
    }
}

#[test]
fn sdk_two_vms_full_lifecycle() {
    let env = Env::new(TWO_VMS);
    let initfile = env.dir.path().join("LagoInitFile");

    // ---- Bad input is the documented kind, and leaves nothing behind.
    let bad = env.dir.path().join("Bad");
    std::fs::write(&bad, "domains: [not, a, mapping]\n").expect("write");
    let err = sdk::init(&bad, &env.workdir(), &init_options(&env))
        .err()
        .expect("a malformed init file is refused");
    assert!(matches!(err, SdkError::BadInput(_)), "{err:?}");
    assert!(!env.workdir().exists(), "a refused init leaves no workdir");
    let err = sdk::load_env(&env.dir.path().join("nowhere"), None, &env.sdk_options())
        .err()
        .expect("no workdir there");
    assert!(matches!(err, SdkError::NotFound(_)), "{err:?}");

    // ---- init, start.
    let lago = sdk::init(&initfile, &env.workdir(), &init_options(&env)).expect("sdk init");
    let _destroy = Destroy(&env);
    lago.start(&[]).expect("start");

    let vms = lago.get_vms();
    assert_eq!(vms.keys().collect::<Vec<_>>(), ["vm01", "vm02"]);
    for (name, vm) in &vms {
        let out = vm.ssh(&["hostname"]).expect("ssh hostname");
        assert_eq!((out.code, text(&out.out).trim()), (0, name.as_str()));
        assert!(vm.running().expect("state"));
        assert_eq!(vm.state().expect("state"), "running");
    }
    let vm = lago.get_vm("vm02").expect("vm02");
    let status = vm.ssh(&["sh", "-c", "echo oops >&2; exit 7"]).expect("ssh");
    assert_eq!((status.code, text(&status.err).trim()), (7, "oops"));
    let input = vm
        .ssh_with_input(&["cat"], Some(b"fed through stdin"))
        .expect("ssh with input");
    assert_eq!(text(&input.out), "fed through stdin");
    assert!(matches!(
        lago.get_vm("nope").err(),
        Some(SdkError::NotFound(_))
    ));

    // ---- Addresses and networks agree with what the guest has.
    assert_eq!(vm.nets(), ["mgmt", "back"]);
    assert_eq!(vm.all_ips().len(), 2);
    let back_ip = vm.ips_in_net("back")[0];
    let addrs = text(&vm.ssh(&["ip", "-4", "-o", "addr"]).expect("ip").out);
    assert!(addrs.contains(&format!("inet {back_ip}/")), "{addrs}");
    let mgmt = lago.get_net(None).expect("management net");
    assert!(mgmt.is_management());
    assert_eq!(mgmt.name(), "mgmt");
    assert_eq!(
        mgmt.resolve("vm01"),
        lago.get_vm("vm01").expect("vm01").ip()
    );
    assert_eq!(lago.get_nets().len(), 2);

    // ---- A copy round trip keeps content and mode; a folder needs
    // `recursive`.
    let src = env.dir.path().join("payload.txt");
    std::fs::write(&src, "round trip\n").expect("write");
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    vm.copy_to(&src, "/tmp/payload.txt", false)
        .expect("copy_to");
    let back = env.dir.path().join("back.txt");
    vm.copy_from("/tmp/payload.txt", &back, false)
        .expect("copy_from");
    assert_eq!(
        std::fs::read_to_string(&back).expect("read"),
        "round trip\n"
    );
    let mode = std::fs::metadata(&back).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    let err = vm.copy_from("/tmp", &back, false).expect_err("a folder");
    assert!(matches!(err, SdkError::BadInput(_)), "{err:?}");
    let err = vm
        .copy_from("/nonexistent/file", &back, false)
        .expect_err("missing in the VM");
    assert!(matches!(err, SdkError::NotFound(_)), "{err:?}");

    // ---- A service through the vm-service plugins (a fake systemctl).
    vm.copy_to(&fake_systemctl(), "/usr/bin/systemctl", false)
        .expect("copy systemctl");
    let svc = vm.service("fakesvc").expect("service");
    assert!(svc.exists().expect("exists") && !svc.alive().expect("alive"));
    svc.start().expect("service start");
    assert!(svc.alive().expect("alive"));
    assert!(!vm
        .service("nosuch")
        .expect("service")
        .exists()
        .expect("exists"));

    // ---- The inventory and the status are the CLI's, byte for byte.
    let cli_ini = env.ok(&["ansible_hosts"]);
    let ini = lago.ansible_inventory(&[]).expect("inventory");
    assert_eq!(ini.trim_end(), cli_ini.trim_end());
    assert!(ini.contains("[groups=web]"), "{ini}");
    let cli_status: serde_json::Value =
        serde_json::from_str(&env.ok(&["-f", "json", "status"])).expect("status json");
    assert_eq!(lago.status(), cli_status);
    assert_eq!(lago.status()["Prefix"]["VMs"]["vm01"]["status"], "running");

    // ---- load_env finds what this one started (as another process would).
    let again = sdk::load_env(&env.workdir(), None, &env.sdk_options()).expect("load_env");
    let out = again
        .get_vm("vm01")
        .expect("vm01")
        .ssh(&["hostname"])
        .expect("ssh");
    assert_eq!(text(&out.out).trim(), "vm01");
    drop(again);

    // ---- A stopped VM: SSH says it is not running.
    lago.stop(&["vm01".to_string()]).expect("stop vm01");
    let err = lago
        .get_vm("vm01")
        .expect("vm01")
        .ssh(&["true"])
        .expect_err("vm01 is stopped");
    assert!(
        matches!(&err, SdkError::NotRunning { vm, .. } if vm == "vm01"),
        "{err:?}"
    );
    let err = lago.stop(&["nope".to_string()]).expect_err("unknown VM");
    assert!(matches!(err, SdkError::NotFound(_)), "{err:?}");

    // ---- destroy leaves nothing: no domain, network, lease or folder.
    let uuid = lago.spec().prefix.uuid.clone();
    lago.destroy().expect("destroy");
    let tag = &uuid[..8];
    let left: Vec<String> = libvirt_objects()
        .into_iter()
        .filter(|n| n.contains(tag))
        .collect();
    assert!(left.is_empty(), "left in libvirt: {left:?}");
    assert!(env.leases().is_empty(), "leases left: {:?}", env.leases());
    assert!(!env.workdir().exists(), "workdir left");
    assert!(!Path::new(&env.workdir()).join("default").exists());
}
