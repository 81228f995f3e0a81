//! The variables the paths of an init file may use (`$LAGO_INITFILE_PATH`,
//! `$LAGO_PREFIX_PATH`, `$LAGO_WORKDIR_PATH`, the environment), and paths
//! made absolute from them.

use std::path::{Path, PathBuf};

use crate::initfile::expand_vars;

/// The variables paths may use besides the process environment.
pub struct PathVars<'a> {
    pub initfile_dir: Option<&'a Path>,
    pub prefix: &'a Path,
    pub workdir: Option<&'a Path>,
    /// Other variables (the process environment for `lago`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl PathVars<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        match name {
            "LAGO_INITFILE_PATH" => self.initfile_dir.map(s).or_else(|| (self.env)(name)),
            "LAGO_PREFIX_PATH" => Some(s(self.prefix)),
            "LAGO_WORKDIR_PATH" => self.workdir.map(s).or_else(|| (self.env)(name)),
            _ => (self.env)(name),
        }
    }

    /// Expand `$VAR` and `${VAR}` in `raw`; an undefined variable is an error.
    pub fn expand(&self, raw: &str) -> Result<String, String> {
        expand_vars(raw, &|n| self.lookup(n))
    }

    /// Expand variables and a leading `~` (the `HOME` of the environment),
    /// make the path absolute (relative paths are taken from the current
    /// directory, as Lago does) and resolve `.` and `..` by name, so that a
    /// path through the prefix or workdir being created
    /// (`$LAGO_PREFIX_PATH/../../scripts/x.sh`) names the file it means.
    pub fn path(&self, raw: &str) -> Result<PathBuf, String> {
        let e = self.expand(raw)?;
        let e = match e.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let home = (self.env)("HOME").ok_or("`~` in a path but HOME is not set")?;
                format!("{home}{rest}")
            }
            _ => e,
        };
        let p = PathBuf::from(e);
        let abs = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
        };
        Ok(lexical_normal(&abs))
    }
}

/// `abs` with `.` and `..` resolved by name (`/a/b/../c` → `/a/c`).
fn lexical_normal(abs: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}
