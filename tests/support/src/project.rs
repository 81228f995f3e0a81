//! [`Project`]: a temporary folder holding a project folder (`proj`), a HOME
//! (`home`) and a lease store (`leases`), and the `lago` runs in it.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::run::Lago;

/// libvirt's test driver: domains and networks in memory, per process.
pub const TEST_LIBVIRT_URL: &str = "test:///default";

/// A temporary project: `proj/` (the current folder of its runs) and
/// `home/` (their HOME) under [`Project::root`]; `leases/` is their lease
/// store (made by lago when needed).
pub struct Project {
    pub dir: tempfile::TempDir,
    /// The run every [`Project::lago`] starts from: in `proj`, with HOME,
    /// XDG_CONFIG_HOME (`home/.config`), XDG_CONFIG_DIRS (`etc-xdg`, never
    /// made) and LAGO_LEASE_DIR of the project. Change it to give every
    /// run more (a variable set again wins).
    pub base: Lago,
}

impl Project {
    /// A new project whose runs are of the binary `bin`.
    pub fn new(bin: impl AsRef<Path>) -> Project {
        let dir = tempfile::tempdir().expect("tmp");
        for d in ["proj", "home"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        let root = dir.path();
        let base = Lago::new(bin)
            .cwd(root.join("proj"))
            .home(root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("home/.config"))
            .env("XDG_CONFIG_DIRS", root.join("etc-xdg"))
            .env("LAGO_LEASE_DIR", root.join("leases"));
        Project { dir, base }
    }

    /// [`Project::new`] with `initfile` as `proj/LagoInitFile`.
    pub fn with_init(bin: impl AsRef<Path>, initfile: &str) -> Project {
        let p = Project::new(bin);
        p.write("LagoInitFile", initfile);
        p
    }

    /// Changes the base run (see [`Project::base`]).
    pub fn configure(mut self, f: impl FnOnce(Lago) -> Lago) -> Project {
        self.base = f(self.base);
        self
    }

    /// [`Project::configure`] with libvirt's test driver.
    pub fn test_driver(self) -> Project {
        self.configure(|l| l.env("LAGO_LIBVIRT_URL", TEST_LIBVIRT_URL))
    }

    /// The temporary folder holding everything.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// The project folder.
    pub fn proj(&self) -> PathBuf {
        self.root().join("proj")
    }
    /// The runs' HOME.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }
    /// The runs' lease store.
    pub fn leases(&self) -> PathBuf {
        self.root().join("leases")
    }
    /// The workdir `init` makes by default.
    pub fn wd(&self) -> PathBuf {
        self.proj().join(".lago")
    }

    /// Writes `text` to `name` in the project folder; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.proj().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// Writes the user's `~/.config/lago/lago.conf`.
    pub fn conf(&self, text: &str) {
        let dir = self.home().join(".config/lago");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("lago.conf"), text).expect("conf");
    }

    /// The base run with `args`, to change further before running it.
    pub fn cmd(&self, args: &[&str]) -> Lago {
        self.base.clone().args(args)
    }

    /// `lago ARGS` in the project folder.
    pub fn lago(&self, args: &[&str]) -> Output {
        self.cmd(args).output()
    }

    /// `lago ARGS` in `cwd`.
    pub fn lago_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.cmd(args).cwd(cwd).output()
    }

    /// `lago ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.cmd(args).ok()
    }

    /// How many lease files the lease store holds.
    pub fn lease_files(&self) -> usize {
        crate::fs::lease_files(&self.leases())
    }
}
