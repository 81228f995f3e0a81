//! `lago export` and `lago init` of the exported init file, with real VMs
//! (inside the VM sandbox).

use std::path::Path;

use lago_e2e::{template, text, Destroy, Env};

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

/// Inits a new environment (own workdir, lease store and template store)
/// from the exported init file `initfile`, starts it and returns the
/// content of /root/mark in its VM.
fn reinit_and_read_mark(initfile: &Path) -> String {
    let env = Env::new("");
    let _destroy = Destroy(&env);
    let initfile = initfile.to_str().expect("utf-8 path");
    env.ok(&["init", "--template-repo-name", "embedded", ".", initfile]);
    env.ok(&["start"]);
    let mark = env.ok(&["shell", "vm0", "cat", "/root/mark"]);
    env.ok(&["destroy", "-y"]);
    mark.trim().to_string()
}

#[test]
fn export_layered_standalone_compressed_and_init_from_each() {
    let env = Env::new(ONE_VM);
    let _destroy = Destroy(&env);
    env.ok(&["init", "--template-repo-name", "embedded"]);
    env.ok(&["start"]);
    env.ok(&[
        "shell",
        "vm0",
        "sh",
        "-c",
        "echo written-before-export > /root/mark && sync",
    ]);
    let dir = env.dir.path();
    let (layered, standalone, compressed) = (
        dir.join("layered"),
        dir.join("standalone"),
        dir.join("compressed"),
    );
    let arg = |p: &Path| p.to_str().expect("utf-8 path").to_string();

    // A running VM is refused, by name, and nothing is written.
    let out = env.lago(&["export", "-d", &arg(&layered)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("VM vm0 must be down"),
        "the running VM is named: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!layered.exists());
    env.ok(&["stop"]);

    // --collect-only: the disks that would be exported, nothing written.
    let collected: serde_json::Value = serde_json::from_str(&env.ok(&[
        "-f",
        "json",
        "export",
        "--collect-only",
        "-d",
        &arg(&layered),
    ]))
    .expect("collect-only is JSON");
    let paths = collected["vm0"].as_array().expect("vm0's disks");
    assert_eq!(paths.len(), 1, "{collected:#}");
    assert!(
        paths[0]
            .as_str()
            .is_some_and(|p| p.ends_with("/vm0_root.qcow2")),
        "{collected:#}"
    );
    assert!(!layered.exists(), "--collect-only writes nothing");

    // Layered: only what the VM changed, its backing file named by the
    // template's store name.
    let store_name = format!("embedded:{}:v1", template());
    let written: serde_json::Value =
        serde_json::from_str(&env.ok(&["-f", "json", "export", "-d", &arg(&layered)]))
            .expect("export prints JSON");
    let image = layered.join("vm0_root.qcow2");
    assert_eq!(
        written["vm0"][0],
        image.display().to_string(),
        "{written:#}"
    );
    let info = lago_test_support::qemu_img::info(&image);
    assert_eq!(info["backing-filename"], store_name, "{info:#}");
    let initfile: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(layered.join("LagoInitFile")).expect("init file written"),
    )
    .expect("the init file is JSON");
    let disk = &initfile["domains"]["vm0"]["disks"][0];
    assert_eq!(
        disk["path"], "$LAGO_INITFILE_PATH/vm0_root.qcow2",
        "{disk:#}"
    );
    assert_eq!(disk["layered"], true, "{disk:#}");
    assert_eq!(disk["template_name"], template(), "{disk:#}");
    assert_eq!(disk["template_version"], "v1", "{disk:#}");

    // Standalone: merged, no backing file.
    env.ok(&["export", "-s", "-d", &arg(&standalone)]);
    let info = lago_test_support::qemu_img::info(&standalone.join("vm0_root.qcow2"));
    assert!(info.get("backing-filename").is_none(), "{info:#}");
    assert!(standalone.join("LagoInitFile").is_file());

    // Compressed (layered): an xz file instead of the image; progress at
    // the info level.
    let out = env.lago(&["-l", "info", "export", "-c", "-d", &arg(&compressed)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let xz = compressed.join("vm0_root.qcow2.xz");
    let head = std::fs::read(&xz).expect("the .xz image");
    assert_eq!(&head[..6], b"\xFD7zXZ\x00", "an xz file");
    assert!(!compressed.join("vm0_root.qcow2").exists());
    assert!(
        text(&out.stderr).contains("compressing"),
        "progress is shown: {}",
        text(&out.stderr)
    );

    // The source is gone; each export starts elsewhere, with the file, each
    // init with a template store of its own (the layers are rebased onto it).
    env.ok(&["destroy", "-y"]);
    for export in [&layered, &standalone, &compressed] {
        assert_eq!(
            reinit_and_read_mark(&export.join("LagoInitFile")),
            "written-before-export",
            "init from {}",
            export.display()
        );
    }
    // The exports were only read.
    assert_eq!(
        lago_test_support::qemu_img::info(&image)["backing-filename"],
        store_name,
        "the layer in the export folder is unchanged"
    );
}

const DATA_DISK_AND_SCRIPT: &str = r#"
domains:
  vm0:
    memory: 256
    vcpu: 1
    nics: [{net: mgmt}]
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
      - {type: empty, name: data, size: 8M, dev: vdb, format: qcow2}
    metadata:
      deploy-scripts: [$LAGO_INITFILE_PATH/setup.sh]
nets:
  mgmt: {type: nat, management: true}
"#;

/// Issue 18: an export re-inits alone. Data written on a blank data disk
/// before the export is there after the source prefix is destroyed, the
/// export folder moved elsewhere and a new environment initialised and
/// started from it; the exported init file points at nothing in the source
/// prefix (the deploy scripts are copied beside the images).
#[test]
fn export_with_data_disk_reinits_after_source_destroyed_and_moved() {
    let env = Env::new(DATA_DISK_AND_SCRIPT);
    let _destroy = Destroy(&env);
    std::fs::write(env.dir.path().join("setup.sh"), "#!/bin/sh\necho set-up\n").expect("script");
    env.ok(&["init", "--template-repo-name", "embedded"]);
    env.ok(&["start"]);
    env.ok(&[
        "shell",
        "vm0",
        "sh",
        "-c",
        "printf data-before-export | dd of=/dev/vdb bs=512 count=1 conv=sync 2>/dev/null && sync",
    ]);
    env.ok(&["stop"]);
    let out = env.dir.path().join("out");
    env.ok(&["export", "-d", out.to_str().expect("utf-8 path")]);
    let init_text = std::fs::read_to_string(out.join("LagoInitFile")).expect("init file");
    assert!(
        !init_text.contains(".lago"),
        "the export points into its source: {init_text}"
    );
    assert!(out.join("scripts").is_dir(), "{init_text}");
    // The blank data disk as Lago's generate_init wrote it: a file disk
    // whose copy the next environment writes to.
    let exported: serde_yaml::Value = serde_yaml::from_str(&init_text).expect("YAML");
    let data = &exported["domains"]["vm0"]["disks"][1];
    assert_eq!(data["type"].as_str(), Some("file"), "{init_text}");
    assert_eq!(data["make_a_copy"].as_bool(), Some(true), "{init_text}");
    let data_image = std::fs::read(out.join("vm0_data.qcow2")).expect("exported data disk");
    env.ok(&["destroy", "-y"]);

    // Elsewhere: a folder the source never knew.
    let elsewhere = tempfile::Builder::new()
        .prefix("lago-e2e-moved.")
        .tempdir()
        .expect("temp dir");
    let moved = elsewhere.path().join("moved");
    std::fs::rename(&out, &moved).expect("move the export");
    let again = Env::new("");
    let _destroy_again = Destroy(&again);
    let initfile = moved.join("LagoInitFile");
    again.ok(&[
        "init",
        "--template-repo-name",
        "embedded",
        ".",
        initfile.to_str().expect("utf-8 path"),
    ]);
    again.ok(&["start"]);
    let data = again.ok(&["shell", "vm0", "head", "-c", "18", "/dev/vdb"]);
    assert_eq!(data.trim(), "data-before-export");
    again.ok(&[
        "shell",
        "vm0",
        "sh",
        "-c",
        "printf written-after | dd of=/dev/vdb bs=512 count=1 conv=sync 2>/dev/null && sync",
    ]);
    again.ok(&["destroy", "-y"]);
    assert_eq!(
        std::fs::read(moved.join("vm0_data.qcow2")).expect("exported data disk"),
        data_image,
        "the export is never written to"
    );
}
