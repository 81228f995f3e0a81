//! Where plugin libraries are looked for.
//!
//! In order:
//! 1. `$LAGO_PLUGIN_PATH`, colon-separated (folders, or `.so` files);
//! 2. `~/.local/lib/lago/plugins`;
//! 3. `/usr/lib/lago/plugins`;
//! 4. the folder holding the running `lago` executable, so that the `.so`
//!    files `cargo build` writes beside `target/debug/lago` load with no
//!    install step. Only `liblago_*.so` files are taken from this folder: a
//!    build folder also holds every other cdylib of the workspace (test
//!    plugins among them).
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
                path: home.join(".local/lib/lago/plugins"),
                file_prefix: "lib",
                named: false,
            });
        }
        dirs.push(SearchDir {
            path: PathBuf::from("/usr/lib/lago/plugins"),
            file_prefix: "lib",
            named: false,
        });
        if let Some(exe) = exe_dir {
            dirs.push(SearchDir {
                path: exe.to_path_buf(),
                file_prefix: "liblago_",
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

    /// Every candidate library file, in search order (within a folder by
    /// name), each canonical path once.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
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
