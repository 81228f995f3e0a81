//! Harness for the end-to-end tests: runs the real `lago` binary in a fresh
//! workdir, inside the VM sandbox that `scripts/test.sh` starts (a network
//! namespace with its own libvirtd; see `scripts/sandbox/`).
//!
//! The tests need root, the sandbox and the embedded template; they run only
//! when `LAGO_E2E=1` is set (as `scripts/test.sh` does), and otherwise fail
//! loudly rather than pass without checking anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Paths and settings of one test environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub lease_dir: PathBuf,
    pub store_dir: PathBuf,
    lago: PathBuf,
}

/// Where cargo put the workspace's binaries.
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("debug");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug")
}

/// The embedded template repository built by `scripts/template/build.sh`.
pub fn embedded_repo() -> PathBuf {
    std::env::var_os("LAGO_EMBEDDED_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/lago/repos/embedded"))
}

/// The template the tests boot: `lago-tiny` (installs the host key lago
/// puts in its seed: pinned) unless `LAGO_E2E_TEMPLATE` names another of the
/// embedded repo, e.g. `lago-tiny-firstboot` (makes its own host key at first
/// boot and prints it on the console: learned). Init files in the tests say
/// `template_name: lago-tiny,`; [`Env::new`] puts this name there.
pub fn template() -> String {
    std::env::var("LAGO_E2E_TEMPLATE").unwrap_or_else(|_| "lago-tiny".to_string())
}

/// How `lago status` says the tests' VMs have their host key checked.
pub fn expected_host_key_status() -> &'static str {
    if template() == "lago-tiny" {
        "pinned"
    } else {
        "console"
    }
}

impl Env {
    /// A fresh workdir holding `initfile` as `LagoInitFile`, with its own
    /// lease store and template store.
    pub fn new(initfile: &str) -> Env {
        assert_eq!(
            std::env::var("LAGO_E2E").as_deref(),
            Ok("1"),
            "end-to-end tests run inside the VM sandbox: use scripts/test.sh"
        );
        let dir = tempfile::Builder::new()
            .prefix("lago-e2e.")
            .tempdir()
            .expect("temp dir");
        let initfile = initfile.replace(
            "template_name: lago-tiny,",
            &format!("template_name: {},", template()),
        );
        std::fs::write(dir.path().join("LagoInitFile"), initfile).expect("write init file");
        let lease_dir = dir.path().join("subnets");
        let store_dir = dir.path().join("store");
        Env {
            dir,
            lease_dir,
            store_dir,
            lago: target_dir().join("lago"),
        }
    }

    /// `lago ARGS` in the workdir; returns the finished process.
    pub fn lago(&self, args: &[&str]) -> Output {
        let out = Command::new(&self.lago)
            .args(args)
            .current_dir(self.dir.path())
            .env("LAGO__LAGO__LEASE_DIR", &self.lease_dir)
            .env("LAGO__INIT__TEMPLATE_STORE", &self.store_dir)
            .env(
                "LAGO__INIT__TEMPLATE_REPOS",
                embedded_repo().parent().expect("repos dir"),
            )
            .env("LAGO__LAGO__DOMAIN_TYPE", "qemu")
            .output()
            .expect("run lago");
        eprintln!(
            "$ lago {}\n-> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `lago ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.lago(args);
        assert!(
            out.status.success(),
            "lago {} failed ({:?}): {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Names of the lease files left in the lease store.
    pub fn leases(&self) -> Vec<String> {
        match std::fs::read_dir(&self.lease_dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.ends_with(".lock"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// `virsh -c qemu:///system ARGS` stdout lines.
pub fn virsh(args: &[&str]) -> Vec<String> {
    let out = Command::new("virsh")
        .arg("-c")
        .arg("qemu:///system")
        .args(args)
        .output()
        .expect("run virsh");
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every libvirt domain and network name, running or not.
pub fn libvirt_objects() -> Vec<String> {
    let mut names = virsh(&["list", "--all", "--name"]);
    names.extend(virsh(&["net-list", "--all", "--name"]));
    names
}

/// Destroys the environment when the test ends, passed or not, so a failed
/// assertion leaves no VM, network or lease behind.
pub struct Destroy<'a>(pub &'a Env);

impl Drop for Destroy<'_> {
    fn drop(&mut self) {
        let _ = self.0.lago(&["destroy", "-y"]);
    }
}

/// A process output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
