//! Init files and repos as Lago's users wrote them (tests/fixtures/real-world,
//! see its README): each case runs through the `lago` binary on libvirt's
//! test driver (`init --skip-bootstrap`, `status -f json`, `ansible_hosts`,
//! `destroy`) and must give the expected output.

use std::path::{Path, PathBuf};

use lago_test_support::fs::copy_tree;
use lago_test_support::{lago_bin, ok, qemu_img, Project};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/real-world")
}

/// Output with the temporary project folder as `$PROJ` (`$PROJ_FLAT` in
/// copied script names) and the prefix uuid
/// (and its 8-character tag) as `<uuid>`/`<tag>`.
fn normalise(text: &str, proj: &Path, uuid: &str) -> String {
    let flat = proj.display().to_string();
    // Copied deploy scripts are named by their flattened source path (Lago's).
    let flat = flat.trim_start_matches('/').replace('/', "_");
    text.replace(&proj.display().to_string(), "$PROJ")
        .replace(&flat, "$PROJ_FLAT")
        .replace(uuid, "<uuid>")
        .replace(&uuid[..8], "<tag>")
}

fn check(case: &Path, name: &str, actual: &str) {
    let path = case.join(name);
    if std::env::var_os("LAGO_FIXTURES_UPDATE").is_some() {
        std::fs::write(&path, actual).expect("update expected");
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

fn run_case(name: &str) {
    let case = fixtures().join(name);
    let p = Project::new(lago_bin!()).test_driver();
    let proj = p.proj();
    let p = p.configure(|l| l.env("SOME_DIR", &proj));
    let root = p.root();
    copy_tree(&case, &proj);
    std::fs::create_dir_all(proj.join("repo_store")).expect("mkdir");
    for image in ["repo_store/el7-base.qcow2", "base.qcow2"] {
        qemu_img::create(&proj.join(image), "qcow2", "16M");
    }
    let args_text = std::fs::read_to_string(case.join("args")).expect("args");
    let store = root.join("store").display().to_string();
    let mut args = vec!["init", "--skip-bootstrap", "--template-store", &store];
    args.extend(args_text.lines().filter(|l| !l.is_empty()));
    ok(&p.lago(&args), &format!("{name}: init"));
    let uuid = std::fs::read_to_string(proj.join(".lago/default/uuid")).expect("uuid");
    let status = ok(&p.lago(&["status", "-f", "json"]), "status");
    check(
        &case,
        "expected.status.json",
        &normalise(&status, &proj, uuid.trim()),
    );
    // Issue 18: every out format shows each network's `libvirt_name`
    // (Lago's key, read by the oVirt system tests).
    let tag = &uuid.trim()[..8];
    for format in ["default", "yaml", "flat"] {
        let out = ok(&p.lago(&["status", "-f", format]), format);
        assert!(
            out.contains("libvirt_name") && out.contains(&format!("{tag}-")),
            "{name}: status -f {format} has no libvirt_name: {out}"
        );
    }
    let hosts = ok(&p.lago(&["ansible_hosts"]), "ansible_hosts");
    check(
        &case,
        "expected.ansible_hosts",
        &normalise(&hosts, &proj, uuid.trim()),
    );
    // What lago planned for the networks: addresses, DNS names, records.
    let mut nets = String::new();
    let nets_dir = proj.join(".lago/default/virt/nets");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&nets_dir)
        .expect("nets")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        nets.push_str(&std::fs::read_to_string(&f).expect("net"));
        nets.push('\n');
    }
    check(
        &case,
        "expected.nets.json",
        &normalise(&nets, &proj, uuid.trim()),
    );
    ok(&p.lago(&["destroy", "-y"]), "destroy");
    assert!(!proj.join(".lago").exists(), "{name}: destroyed");
}

#[test]
fn lago_functional_fixture() {
    run_case("lago-functional");
}

#[test]
fn ovirt_system_tests_init() {
    run_case("ovirt-system-tests");
}

#[test]
fn public_example() {
    run_case("public-example");
}
