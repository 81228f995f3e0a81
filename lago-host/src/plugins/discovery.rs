//! Where plugin libraries are looked for.
//!
//! In order:
//! 1. `$LAGO_PLUGIN_PATH`, colon-separated (folders, or `.so` files);
//! 2. `~/.local/lib/lago/plugins`;
//! 3. `/usr/lib/lago/plugins` ([`SYSTEM_PLUGIN_DIR`]), where the Debian
//!    package installs the default plugins (`lago plugins` shows them as
//!    `packaged`);
//! 4. the folder holding the running `lago` executable, so that the `.so`
//!    files `cargo build` writes beside `target/debug/lago` load with no
//!    install step. Only `liblago_*.so` files are taken from this folder: a
//!    build folder also holds every other cdylib of the workspace (test
//!    plugins among them). A build's `liblago_X.so` shadows the packaged
//!    file of the same name (a build-tree lago on a machine with the package
//!    installed runs its own default plugins, not two of each).
//! 5. the `plugins` folder of the Python package `lago`, when lago runs
//!    inside it ([`SearchPath::with_package_dir`]): the default plugins the
//!    wheel carries (`liblago_*.so`), so `pip install` alone is enough. A
//!    fallback: a library whose file name an earlier folder has (the same
//!    plugins installed system-wide) is not taken from here.
//!
//! In the other folders every `lib*.so` file is a candidate, and so is any
//! file named in `$LAGO_PLUGIN_PATH`. A candidate the loader cannot open (not
//! ELF, another architecture, a missing dependency) gets one warning with the
//! reason ([`super::load`]); a shared library without lago's root module is
//! skipped quietly (debug log). A `$LAGO_PLUGIN_PATH` entry that does not
//! exist gets a warning. A file reachable twice (same canonical path) is
//! loaded once.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The environment variable that prepends folders to the search path.
pub const PLUGIN_PATH_VAR: &str = "LAGO_PLUGIN_PATH";

/// The folder of the packaged plugins (the Debian package's default plugins,
/// and the system-wide place for others).
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/lago/plugins";

/// A user's own plugin folder, under their home.
const USER_PLUGIN_DIR: &str = ".local/lib/lago/plugins";

/// The prefix of the default plugins' file names (taken from beside the
/// executable).
const DEFAULT_PLUGIN_PREFIX: &str = "liblago_";

/// How a plugin library was found, as `lago plugins` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Named by `$LAGO_PLUGIN_PATH`.
    PluginPath,
    /// `~/.local/lib/lago/plugins`.
    User,
    /// [`SYSTEM_PLUGIN_DIR`]: installed by a package.
    Packaged,
    /// Beside the running executable (a build tree).
    BesideExecutable,
    /// The `plugins` folder of the Python package `lago` (the wheel's).
    PythonPackage,
}

impl Origin {
    /// The name `lago plugins` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::PluginPath => "LAGO_PLUGIN_PATH",
            Origin::User => "user",
            Origin::Packaged => "packaged",
            Origin::BesideExecutable => "beside the executable",
            Origin::PythonPackage => "python package",
        }
    }
}

/// One place to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDir {
    pub path: PathBuf,
    /// Only files whose name starts with this are taken (`lib` or `liblago_`).
    pub file_prefix: &'static str,
    /// Named by the user (`LAGO_PLUGIN_PATH`): its absence is warned about.
    pub named: bool,
}

/// The ordered list of places plugin libraries are looked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPath {
    pub dirs: Vec<SearchDir>,
    /// The Python package's `plugins` folder, searched last as a fallback.
    pub package: Option<PathBuf>,
}

impl SearchPath {
    /// The search path of this process (environment, home, executable).
    pub fn from_env() -> SearchPath {
        let var = std::env::var_os(PLUGIN_PATH_VAR);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        SearchPath::new(var.as_deref(), home.as_deref(), exe_dir.as_deref())
    }

    /// The search path for these inputs (see the module docs).
    pub fn new(plugin_path: Option<&OsStr>, home: Option<&Path>, exe_dir: Option<&Path>) -> Self {
        let mut dirs = Vec::new();
        if let Some(var) = plugin_path {
            for p in std::env::split_paths(var) {
                if !p.as_os_str().is_empty() {
                    dirs.push(SearchDir {
                        path: p,
                        file_prefix: "lib",
                        named: true,
                    });
                }
            }
        }
        if let Some(home) = home {
            dirs.push(SearchDir {
                path: home.join(USER_PLUGIN_DIR),
                file_prefix: "lib",
                named: false,
            });
        }
        dirs.push(SearchDir {
            path: PathBuf::from(SYSTEM_PLUGIN_DIR),
            file_prefix: "lib",
            named: false,
        });
        if let Some(exe) = exe_dir {
            dirs.push(SearchDir {
                path: exe.to_path_buf(),
                file_prefix: DEFAULT_PLUGIN_PREFIX,
                named: false,
            });
        }
        SearchPath {
            dirs,
            package: None,
        }
    }

    /// The search path with `dir` (the Python package's `plugins` folder)
    /// searched last for `liblago_*.so` files, each taken only when no
    /// earlier folder has a file of that name; unchanged for `None`.
    pub fn with_package_dir(mut self, dir: Option<&Path>) -> Self {
        if let Some(dir) = dir {
            self.package = Some(dir.to_path_buf());
        }
        self
    }

    /// How `file` (a candidate of this path) was found: by the first search
    /// folder holding it (or naming it); `None` for a file of none of them.
    pub fn origin(&self, file: &Path) -> Option<Origin> {
        if self.package.is_some() && self.package.as_deref() == file.parent() {
            return Some(Origin::PythonPackage);
        }
        let dir = self
            .dirs
            .iter()
            .find(|d| d.path == file || Some(d.path.as_path()) == file.parent())?;
        Some(if dir.named {
            Origin::PluginPath
        } else if dir.path == Path::new(SYSTEM_PLUGIN_DIR) {
            Origin::Packaged
        } else if dir.path.ends_with(USER_PLUGIN_DIR) {
            Origin::User
        } else {
            Origin::BesideExecutable
        })
    }

    /// The default plugins' file names in the executable's folder (a build
    /// tree): they shadow the packaged files of the same name.
    fn build_plugin_names(&self) -> HashSet<std::ffi::OsString> {
        let Some(exe_dir) = self
            .dirs
            .iter()
            .find(|d| !d.named && d.file_prefix == DEFAULT_PLUGIN_PREFIX)
        else {
            return HashSet::new();
        };
        let Ok(rd) = std::fs::read_dir(&exe_dir.path) else {
            return HashSet::new();
        };
        rd.flatten()
            .map(|e| e.file_name())
            .filter(|n| {
                n.to_str()
                    .is_some_and(|n| n.starts_with(DEFAULT_PLUGIN_PREFIX) && n.ends_with(".so"))
            })
            .collect()
    }

    /// Every candidate library file, in search order (within a folder by
    /// name), each canonical path once.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let shadowing = self.build_plugin_names();
        for dir in &self.dirs {
            let mut files = Vec::new();
            if dir.path.is_file() {
                files.push(dir.path.clone());
            } else if let Ok(rd) = std::fs::read_dir(&dir.path) {
                for entry in rd.flatten() {
                    let p = entry.path();
                    let Some(name) = p.file_name().and_then(OsStr::to_str) else {
                        continue;
                    };
                    if name.starts_with(dir.file_prefix) && name.ends_with(".so") && p.is_file() {
                        files.push(p);
                    }
                }
                files.sort();
            } else if dir.named {
                tracing::warn!(
                    "{PLUGIN_PATH_VAR} names {}, which is neither a plugin library nor a \
                     readable folder",
                    dir.path.display()
                );
            } else {
                tracing::trace!("plugin folder {} is absent", dir.path.display());
            }
            for f in files {
                if dir.path == Path::new(SYSTEM_PLUGIN_DIR)
                    && f.file_name().is_some_and(|n| shadowing.contains(n))
                {
                    tracing::debug!(
                        "{}: shadowed by the build beside the executable",
                        f.display()
                    );
                    continue;
                }
                let canon = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
                if seen.insert(canon) {
                    out.push(f);
                }
            }
        }
        if let Some(package) = &self.package {
            let found: HashSet<_> = out.iter().filter_map(|f| f.file_name()).collect();
            let mut files: Vec<PathBuf> = std::fs::read_dir(package)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(OsStr::to_str)
                        .is_some_and(|n| n.starts_with("liblago_") && n.ends_with(".so"))
                        && p.is_file()
                })
                .collect();
            files.sort();
            let (shadowed, taken): (Vec<_>, Vec<_>) = files
                .into_iter()
                .partition(|f| f.file_name().is_some_and(|n| found.contains(n)));
            for f in shadowed {
                tracing::debug!(
                    "{}: not used, a library of that name is installed elsewhere on the \
                     plugin path",
                    f.display()
                );
            }
            out.extend(taken);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_plugins_are_a_fallback() {
        let sys = tempfile::tempdir().expect("temp dir");
        let pkg = tempfile::tempdir().expect("temp dir");
        for (dir, name) in [
            (&sys, "liblago_out_dot.so"),
            (&pkg, "liblago_out_dot.so"),
            (&pkg, "liblago_service_systemd.so"),
            (&pkg, "libother.so"),
        ] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let sp = SearchPath::new(Some(sys.path().as_os_str()), None, None)
            .with_package_dir(Some(pkg.path()));
        assert_eq!(
            sp.candidates(),
            vec![
                sys.path().join("liblago_out_dot.so"),
                pkg.path().join("liblago_service_systemd.so"),
            ]
        );
        assert_eq!(
            SearchPath::new(None, None, None)
                .with_package_dir(None)
                .package,
            None
        );
    }

    #[test]
    fn order_is_env_home_system_exe() {
        let sp = SearchPath::new(
            Some(OsStr::new("/a:/b::")),
            Some(Path::new("/home/u")),
            Some(Path::new("/opt/lago/bin")),
        );
        let dirs: Vec<_> = sp
            .dirs
            .iter()
            .map(|d| (d.path.to_str().unwrap_or(""), d.file_prefix))
            .collect();
        assert_eq!(
            dirs,
            vec![
                ("/a", "lib"),
                ("/b", "lib"),
                ("/home/u/.local/lib/lago/plugins", "lib"),
                ("/usr/lib/lago/plugins", "lib"),
                ("/opt/lago/bin", "liblago_"),
            ]
        );
    }

    #[test]
    fn origin_names_the_folder_that_holds_the_file() {
        let sp = SearchPath::new(
            Some(OsStr::new("/a:/named/libx.so")),
            Some(Path::new("/home/u")),
            Some(Path::new("/opt/lago/bin")),
        );
        let o = |p: &str| sp.origin(Path::new(p));
        assert_eq!(o("/a/liby.so"), Some(Origin::PluginPath));
        assert_eq!(o("/named/libx.so"), Some(Origin::PluginPath));
        assert_eq!(
            o("/home/u/.local/lib/lago/plugins/libz.so"),
            Some(Origin::User)
        );
        assert_eq!(
            o("/usr/lib/lago/plugins/liblago_provider_ssh.so"),
            Some(Origin::Packaged)
        );
        assert_eq!(
            o("/opt/lago/bin/liblago_out_dot.so"),
            Some(Origin::BesideExecutable)
        );
        assert_eq!(o("/elsewhere/libw.so"), None);
        assert_eq!(Origin::Packaged.as_str(), "packaged");
    }

    #[test]
    fn candidates_filter_and_dedupe() -> std::io::Result<()> {
        let a = tempfile::tempdir()?;
        let exe = tempfile::tempdir()?;
        for n in [
            "libone.so",
            "libtwo.so",
            "notlib.so",
            "libthree.so.1",
            "libdir.so",
        ] {
            if n == "libdir.so" {
                std::fs::create_dir(a.path().join(n))?;
            } else {
                std::fs::write(a.path().join(n), b"")?;
            }
        }
        std::fs::write(exe.path().join("liblago_x.so"), b"")?;
        std::fs::write(exe.path().join("libother.so"), b"")?;
        let var = std::env::join_paths([a.path(), a.path()]).map_err(std::io::Error::other)?;
        let sp = SearchPath::new(Some(&var), None, Some(exe.path()));
        let names: Vec<String> = sp
            .candidates()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, vec!["libone.so", "libtwo.so", "liblago_x.so"]);
        Ok(())
    }
}
