//! A disk's `build:` section, for real: virt-customize (libguestfs, forced
//! to TCG) changes the VM's overlay at `init`, the VM boots from it without a
//! seed (`bootstrap: false`), lago reaches it with the key `ssh-inject: ''`
//! put there, and the files copied in and touched are in the guest.
//! Needs libguestfs-tools (scripts/test.sh installs it).

use lago_e2e::{text, Destroy, Env};

const BUILT_VM: &str = r#"
domains:
  vm0:
    memory: 256
    bootstrap: false
    nics: [{net: mgmt}]
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2,
         build: [{virt-customize: {ssh-inject: '', copy-in: 'files:/root', touch: /root/file1}}]}
nets:
  mgmt: {type: nat, management: true}
"#;

#[test]
fn virt_customize_build_steps_boot_and_are_in_the_guest() {
    let env = Env::new(BUILT_VM);
    // `files` is relative to the init file's folder.
    let files = env.dir.path().join("files");
    std::fs::create_dir_all(&files).expect("mkdir files");
    std::fs::write(files.join("greeting"), "hello from the build\n").expect("write");
    let _destroy = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);

    // The builder's output went to the prefix log.
    let log = std::fs::read_to_string(env.dir.path().join(".lago/default/logs/lago.log"))
        .expect("prefix log");
    assert!(log.contains("virt-customize --format qcow2 -a"), "{log}");
    assert!(log.contains("Running touch: /root/file1"), "{log}");

    env.ok(&["start"]);
    assert_eq!(
        env.ok(&["shell", "vm0", "cat /root/files/greeting"]).trim(),
        "hello from the build"
    );
    env.ok(&["shell", "vm0", "test -f /root/file1"]);
    // No seed: the host key was not pinned but learned.
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["-f", "json", "status"])).expect("status json");
    let how = status["Prefix"]["VMs"]["vm0"]["ssh host key"].clone();
    assert!(how == "console" || how == "learned", "{status}");
}

#[test]
fn a_failing_build_step_fails_init_with_its_output_and_leaves_nothing() {
    let env = Env::new(&BUILT_VM.replace("copy-in: 'files:/root'", "copy-in: 'no-such-dir:/root'"));
    let out = env.lago(&["init", "--template-repo-name", "embedded"]);
    assert!(
        !out.status.success(),
        "init with a failing build step succeeded"
    );
    let err = text(&out.stderr);
    assert!(err.contains("virt-customize"), "{err}");
    assert!(
        err.contains("no-such-dir"),
        "the builder's own words: {err}"
    );
    assert!(
        !env.dir.path().join(".lago/default").exists(),
        "a failed init leaves no prefix"
    );
    assert!(env.leases().is_empty(), "leases left: {:?}", env.leases());
}
