//! Paths inside a prefix are stored relative to it, spelt as Lago stored
//! them (`$LAGO_PREFIX_PATH/images/vm0_root.qcow2`), so a prefix or workdir
//! that is copied or moved uses its own images and scripts, never the
//! original's. In memory (and for plugins) every path is absolute.

use std::path::{Path, PathBuf};

use lago_plugin_api::spec::VmSpec;
use serde_json::Value;

/// The variable that stands for the prefix folder in stored paths.
pub const PREFIX_VAR: &str = "$LAGO_PREFIX_PATH";

/// `vm` as stored: its disk paths and deploy-script paths under `prefix`
/// written relative to [`PREFIX_VAR`].
pub fn to_stored(vm: &VmSpec, prefix: &Path) -> VmSpec {
    let mut vm = vm.clone();
    map_paths(&mut vm, &|p| match p.strip_prefix(prefix) {
        Ok(rest) => Path::new(PREFIX_VAR).join(rest),
        Err(_) => p.to_path_buf(),
    });
    vm
}

/// `vm` as read back from the prefix at `prefix`: [`PREFIX_VAR`] replaced
/// by the prefix's present folder.
pub fn from_stored(vm: &mut VmSpec, prefix: &Path) {
    map_paths(vm, &|p| match p.strip_prefix(PREFIX_VAR) {
        Ok(rest) => prefix.join(rest),
        Err(_) => p.to_path_buf(),
    });
}

fn map_paths(vm: &mut VmSpec, f: &dyn Fn(&Path) -> PathBuf) {
    for disk in &mut vm.disks {
        if let Some(p) = &disk.path {
            disk.path = Some(f(p));
        }
    }
    if let Some(Value::Array(scripts)) = vm.metadata.get_mut("deploy-scripts") {
        for s in scripts.iter_mut() {
            if let Value::String(text) = s {
                *text = f(Path::new(text.as_str())).to_string_lossy().into_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_move() {
        let vm: VmSpec = serde_json::from_value(serde_json::json!({
            "name": "vm0", "libvirt_name": "x-vm0", "memory": 1, "vcpu": 1, "nics": [],
            "disks": [
                {"type": "empty", "name": "root", "dev": "vda", "format": "qcow2",
                 "path": "/w/.lago/default/images/vm0_root.qcow2"},
                {"type": "file", "name": "d", "dev": "vdb", "format": "raw", "path": "/data/x.raw"}
            ],
            "mgmt_net": "n", "vm-provider": "p", "vm-type": "t",
            "metadata": {"deploy-scripts": ["/w/.lago/default/scripts/s.sh"]}
        }))
        .expect("vm");
        let stored = to_stored(&vm, Path::new("/w/.lago/default"));
        assert_eq!(
            stored.disks[0].path.as_deref(),
            Some(Path::new("$LAGO_PREFIX_PATH/images/vm0_root.qcow2"))
        );
        assert_eq!(
            stored.disks[1].path.as_deref(),
            Some(Path::new("/data/x.raw"))
        );
        let mut back = stored.clone();
        from_stored(&mut back, Path::new("/w/.lago/default"));
        assert_eq!(back, vm);
        let mut moved = stored;
        from_stored(&mut moved, Path::new("/copy/.lago/default"));
        assert_eq!(
            moved.disks[0].path.as_deref(),
            Some(Path::new("/copy/.lago/default/images/vm0_root.qcow2"))
        );
        assert_eq!(
            moved.metadata["deploy-scripts"][0],
            "/copy/.lago/default/scripts/s.sh"
        );
    }
}
