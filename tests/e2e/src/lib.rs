//! Harness for the end-to-end tests: runs the real `lago` binary in a fresh
//! workdir, inside the VM sandbox that `scripts/test.sh` starts (a network
//! namespace with its own libvirtd; see `scripts/sandbox/`).
//!
//! The tests need root, the sandbox and the embedded template; they run only
//! when `LAGO_E2E=1` is set (as `scripts/test.sh` does), and otherwise fail
//! loudly rather than pass without checking anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lago_test_support::Lago;
pub use lago_test_support::{target_dir, text};

/// Paths and settings of one test environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub lease_dir: PathBuf,
    pub store_dir: PathBuf,
    lago: PathBuf,
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

    /// The configuration every run of the test gets `(section, key,
    /// value)`: its own lease and template stores, the embedded repo, TCG.
    pub fn settings(&self) -> Vec<(String, String, String)> {
        // The repository's own folder, not the folder of all repositories:
        // engineers' variants beside it are named `embedded` too.
        let repos = embedded_repo();
        [
            ("lago", "lease_dir", self.lease_dir.clone()),
            ("init", "template_store", self.store_dir.clone()),
            ("init", "template_repos", repos),
            ("lago", "domain_type", PathBuf::from("qemu")),
        ]
        .into_iter()
        .map(|(s, k, v)| (s.to_string(), k.to_string(), v.display().to_string()))
        .collect()
    }

    /// The settings as `LAGO__SECTION__KEY` variables (for `lago` and
    /// Python processes).
    pub fn settings_env(&self) -> Vec<(String, String)> {
        self.settings()
            .into_iter()
            .map(|(s, k, v)| {
                (
                    format!("LAGO__{}__{}", s.to_uppercase(), k.to_uppercase()),
                    v,
                )
            })
            .collect()
    }

    /// The SDK's options giving what [`Env::lago`] gives the binary, with
    /// the workspace's plugin libraries.
    pub fn sdk_options(&self) -> lago::sdk::LoadOptions {
        lago::sdk::LoadOptions {
            config: self.settings(),
            plugin_dir: Some(target_dir()),
        }
    }

    /// The workdir `init` makes by default (`.lago` in the test folder).
    pub fn workdir(&self) -> PathBuf {
        self.dir.path().join(".lago")
    }

    /// `lago` in the workdir with the test's settings, to give arguments
    /// and run (its command line and output echoed on stderr).
    pub fn cmd(&self) -> Lago {
        Lago::new(&self.lago)
            .cwd(self.dir.path())
            .envs(self.settings_env())
            .echo()
    }

    /// `lago ARGS` in the workdir; returns the finished process.
    pub fn lago(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output()
    }

    /// `lago ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.cmd().args(args).ok()
    }

    /// `lago -f json status`, which must succeed, as JSON.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["-f", "json", "status"])).expect("status is JSON")
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

/// A stand-in for systemctl (a shell script) that knows one unit,
/// `fakesvc`, whose state is a file in the guest; answers `status` as
/// systemctl does (0 active, 3 inactive, 4 unknown unit).
pub fn fake_systemctl() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fake-systemctl")
}

/// `virsh -c qemu:///system ARGS` stdout lines.
pub fn virsh(args: &[&str]) -> Vec<String> {
    virsh_at("qemu:///system", args)
}

/// `virsh -c URI ARGS` stdout lines (a libvirt host of a multi-host test).
pub fn virsh_at(uri: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(uri)
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
