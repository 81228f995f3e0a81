//! Deploy scripts: each VM's `deploy-scripts` checked to exist now, and
//! named by their copies in the prefix, which init makes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lago_plugin_api::spec::Extra;
use serde_json::Value;

use super::vars::PathVars;
use crate::initfile::{DomainDef, InitError, InitFile, KeyPath};

/// The copies of the deploy scripts planned so far.
pub struct DeployScripts {
    /// Where the copies go.
    dir: PathBuf,
    /// (source, copy in the prefix), in the order they were first named.
    pub copies: Vec<(PathBuf, PathBuf)>,
    /// Each deploy script's copy in the prefix, by the source it copies.
    copied: BTreeMap<PathBuf, PathBuf>,
}

impl DeployScripts {
    /// No script yet; copies go to `dir`.
    pub fn new(dir: PathBuf) -> DeployScripts {
        DeployScripts {
            dir,
            copies: Vec::new(),
            copied: BTreeMap::new(),
        }
    }

    /// The metadata of VM `vm` (`d`), its `deploy-scripts` (if a list) the
    /// paths of their copies.
    pub fn plan_metadata(
        &mut self,
        init: &InitFile,
        vm: &str,
        d: &DomainDef,
        vars: &PathVars<'_>,
    ) -> Result<Extra, InitError> {
        let mut metadata = d.metadata.clone();
        let Some(Value::Array(scripts)) = metadata.get("deploy-scripts") else {
            return Ok(metadata);
        };
        let sp = KeyPath::root()
            .key("domains")
            .key(vm)
            .key("metadata")
            .key("deploy-scripts");
        let mut out = Vec::with_capacity(scripts.len());
        for (i, s) in scripts.iter().enumerate() {
            let raw = s.as_str().unwrap_or_default();
            let src = vars.path(raw).map_err(|why| {
                init.error(sp.idx(i), why, Some("a path whose variables are defined"))
            })?;
            if !src.is_file() {
                return Err(init.error(
                    sp.idx(i),
                    format!("deploy script {} does not exist", src.display()),
                    Some("the path of an existing script file"),
                ));
            }
            out.push(Value::String(
                self.copy_of(src).to_string_lossy().into_owned(),
            ));
        }
        metadata.insert("deploy-scripts".into(), Value::Array(out));
        Ok(metadata)
    }

    /// The copy of `src`: the one already planned, or a new one.
    fn copy_of(&mut self, src: PathBuf) -> PathBuf {
        if let Some(dest) = self.copied.get(&src) {
            return dest.clone();
        }
        let dest = script_copy_name(&src, &self.dir, &self.copied);
        self.copied.insert(src.clone(), dest.clone());
        self.copies.push((src, dest.clone()));
        dest
    }
}

/// Where a deploy script is copied in the prefix: its path flattened
/// (`/a/b/c.sh` -> `scripts/a_b_c.sh`, as Lago named the copies), with
/// `-2`, `-3`, ... added when another script already has that name
/// (`a_b/c.sh` and `a/b_c.sh` flatten alike: neither may replace the other).
fn script_copy_name(src: &Path, dir: &Path, copied: &BTreeMap<PathBuf, PathBuf>) -> PathBuf {
    let flat = src
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_");
    let taken = |p: &PathBuf| copied.values().any(|d| d == p);
    let mut dest = dir.join(&flat);
    let mut n = 2;
    while taken(&dest) {
        dest = dir.join(format!("{flat}-{n}"));
        n += 1;
    }
    dest
}
