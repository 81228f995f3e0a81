//! `lago deploy`: each VM's `metadata.deploy-scripts` run over SSH, the VMs
//! in parallel and the scripts of one VM in order; the first script that
//! fails stops its VM's deployment.
//!
//! `init` copied every script into `PREFIX/scripts/` and stored the copies'
//! paths in the VM's spec, so deploy runs those copies (the originals may
//! have changed or gone since). Each script's output goes to the prefix log
//! (debug level); a failure names the VM, the script, its exit code and the
//! tail of its output.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lago_plugin_api::spec::{PrefixInfo, VmSpec};
use serde::Serialize;
use serde_json::Value;

use crate::sanitize::tail_lines;
use crate::ssh::{SshError, SshPool, SshTarget};

/// Lines of each output stream shown when a script fails.
pub const TAIL_LINES: usize = 20;

/// The metadata key holding a VM's deploy scripts.
pub const SCRIPTS_KEY: &str = "deploy-scripts";
/// Its deprecated older name (Lago still reads it).
pub const OLD_SCRIPTS_KEY: &str = "ovirt-scripts";

/// What deploying can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// `metadata.deploy-scripts` is not a list of paths.
    #[error("VM {vm}: metadata/{key} must be a list of script paths")]
    BadSpec { vm: String, key: &'static str },

    /// A script path uses a variable that is not defined.
    #[error("VM {vm}: deploy script {script:?}: {why}")]
    BadPath {
        vm: String,
        script: String,
        why: String,
    },

    /// The stored copy of a script is gone from the prefix.
    #[error(
        "VM {vm}: deploy script {} is missing (init copies the scripts into {}; run init again)",
        script.display(),
        scripts_dir.display()
    )]
    Missing {
        vm: String,
        script: PathBuf,
        scripts_dir: PathBuf,
    },

    /// A script could not be read.
    #[error("VM {vm}: cannot read deploy script {}", script.display())]
    Read {
        vm: String,
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The SSH layer failed while running a script.
    #[error("VM {vm}: running deploy script {}", script.display())]
    Ssh {
        vm: String,
        script: PathBuf,
        #[source]
        source: Box<SshError>,
    },

    /// A script exited with a non-zero code.
    #[error(
        "deploy script {} failed on VM {vm} with exit code {code}{}",
        script.display(),
        if tail.is_empty() { String::from(" (no output)") } else { format!("; last lines of its output:\n{tail}") }
    )]
    Failed {
        vm: String,
        script: PathBuf,
        code: i32,
        /// The last lines of its stdout and stderr, labelled and indented.
        tail: String,
    },
}

impl DeployError {
    /// The error and its causes on one line (the output tail keeps its own
    /// lines).
    pub fn chain_string(&self) -> String {
        crate::error::render_chain(self)
    }

    /// Bad input or state the user can fix, as opposed to a failure of the
    /// connection or of the system. A failing script is the user's.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, DeployError::Ssh { .. } | DeployError::Read { .. })
    }
}

impl From<DeployError> for crate::error::Error {
    fn from(e: DeployError) -> Self {
        if e.is_user_error() {
            crate::error::Error::user(e.chain_string())
        } else {
            crate::error::Error::internal(e.chain_string())
        }
    }
}

/// One script that ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptRun {
    pub script: PathBuf,
    pub code: i32,
    pub seconds: f64,
}

/// The scripts of `vm` (its stored `metadata.deploy-scripts`, or the
/// deprecated `ovirt-scripts`), resolved to the copies in the prefix.
///
/// Stored paths may use `$LAGO_PREFIX_PATH` and `$LAGO_WORKDIR_PATH` (as
/// Lago stores them); a relative path is taken from the prefix. When a
/// stored path is gone but a script of that name is in the prefix's
/// `scripts/` (the prefix was moved), that one is used.
pub fn vm_scripts(vm: &VmSpec, prefix: &PrefixInfo) -> Result<Vec<PathBuf>, DeployError> {
    let (key, value) = match vm.metadata.get(SCRIPTS_KEY) {
        Some(v) if !is_empty(v) => (SCRIPTS_KEY, v),
        _ => match vm.metadata.get(OLD_SCRIPTS_KEY) {
            Some(v) if !is_empty(v) => {
                tracing::warn!(
                    "VM {}: metadata/{OLD_SCRIPTS_KEY} is deprecated, name it {SCRIPTS_KEY}",
                    vm.name
                );
                (OLD_SCRIPTS_KEY, v)
            }
            _ => return Ok(Vec::new()),
        },
    };
    let bad = || DeployError::BadSpec {
        vm: vm.name.clone(),
        key,
    };
    let list = value.as_array().ok_or_else(bad)?;
    list.iter()
        .map(|v| {
            let raw = v.as_str().ok_or_else(bad)?;
            resolve_script(&vm.name, raw, prefix)
        })
        .collect()
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn resolve_script(vm: &str, raw: &str, prefix: &PrefixInfo) -> Result<PathBuf, DeployError> {
    let lookup = |name: &str| match name {
        "LAGO_PREFIX_PATH" => Some(prefix.path.to_string_lossy().into_owned()),
        "LAGO_WORKDIR_PATH" => prefix
            .workdir
            .as_ref()
            .map(|w| w.to_string_lossy().into_owned())
            .or_else(|| std::env::var(name).ok()),
        _ => std::env::var(name).ok(),
    };
    let expanded =
        crate::initfile::expand_vars(raw, &lookup).map_err(|why| DeployError::BadPath {
            vm: vm.to_string(),
            script: raw.to_string(),
            why,
        })?;
    let path = prefix.path.join(expanded);
    if path.is_file() {
        return Ok(path);
    }
    let scripts_dir = prefix.scripts_dir();
    if let Some(name) = path.file_name() {
        let moved = scripts_dir.join(name);
        if moved.is_file() {
            return Ok(moved);
        }
    }
    Err(DeployError::Missing {
        vm: vm.to_string(),
        script: path,
        scripts_dir,
    })
}

/// Runs `scripts` on the VM in order, stopping at the first that fails.
/// `timeout` bounds each script (`None`: no limit).
pub fn deploy_vm(
    pool: &SshPool,
    target: &SshTarget,
    scripts: &[PathBuf],
    timeout: Option<Duration>,
) -> Result<Vec<ScriptRun>, DeployError> {
    let vm = &target.name;
    let mut runs = Vec::with_capacity(scripts.len());
    for script in scripts {
        let body = std::fs::read(script).map_err(|source| DeployError::Read {
            vm: vm.clone(),
            script: script.clone(),
            source,
        })?;
        tracing::info!("VM {vm}: running deploy script {}", script.display());
        let started = Instant::now();
        let status =
            pool.exec_script(target, &body, timeout)
                .map_err(|source| DeployError::Ssh {
                    vm: vm.clone(),
                    script: script.clone(),
                    source: Box::new(source),
                })?;
        let seconds = started.elapsed().as_secs_f64();
        log_output(vm, script, &status.out, &status.err);
        tracing::info!(
            "VM {vm}: deploy script {} exited with {} after {seconds:.1}s",
            script.display(),
            status.code
        );
        if status.code != 0 {
            return Err(DeployError::Failed {
                vm: vm.clone(),
                script: script.clone(),
                code: status.code,
                tail: output_tail(&status.out, &status.err),
            });
        }
        runs.push(ScriptRun {
            script: script.clone(),
            code: status.code,
            seconds,
        });
    }
    Ok(runs)
}

/// Both streams into the prefix log (debug level), line by line.
fn log_output(vm: &str, script: &Path, out: &[u8], err: &[u8]) {
    let name = script.display();
    for (stream, bytes) in [("stdout", out), ("stderr", err)] {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            tracing::debug!("VM {vm}: {name}: {stream}: {line}");
        }
    }
}

/// The last [`TAIL_LINES`] lines of each stream, labelled.
pub fn output_tail(out: &[u8], err: &[u8]) -> String {
    let mut parts = Vec::new();
    for (label, bytes) in [("stdout", out), ("stderr", err)] {
        let tail = tail_lines(bytes, TAIL_LINES, "    ");
        if !tail.is_empty() {
            parts.push(format!("  {label}:\n{tail}"));
        }
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(dir: &Path) -> PrefixInfo {
        PrefixInfo {
            name: "default".into(),
            path: dir.to_path_buf(),
            workdir: None,
            uuid: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    fn vm_with(metadata: Value) -> Result<VmSpec, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "name": "vm0", "libvirt_name": "x-vm0", "memory": 256, "vcpu": 1,
            "nics": [], "disks": [], "mgmt_net": "n",
            "vm-provider": "local-libvirt", "vm-type": "default",
            "metadata": metadata,
        }))
    }

    #[test]
    fn scripts_resolve_to_the_prefix_copies() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = prefix(dir.path());
        std::fs::create_dir(p.scripts_dir())?;
        std::fs::write(p.scripts_dir().join("a.sh"), "true\n")?;
        std::fs::write(p.scripts_dir().join("b.sh"), "true\n")?;
        let absolute = p.scripts_dir().join("a.sh");
        let vm = vm_with(serde_json::json!({
            "deploy-scripts": [absolute, "$LAGO_PREFIX_PATH/scripts/b.sh", "scripts/a.sh",
                               "/moved/prefix/scripts/b.sh"]
        }))?;
        let got = vm_scripts(&vm, &p)?;
        assert_eq!(
            got,
            vec![
                absolute.clone(),
                p.scripts_dir().join("b.sh"),
                absolute,
                p.scripts_dir().join("b.sh"),
            ]
        );
        Ok(())
    }

    #[test]
    fn no_scripts_and_the_deprecated_key() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = prefix(dir.path());
        assert!(vm_scripts(&vm_with(serde_json::json!({}))?, &p)?.is_empty());
        assert!(vm_scripts(&vm_with(serde_json::json!({"deploy-scripts": []}))?, &p)?.is_empty());
        std::fs::write(dir.path().join("old.sh"), "true\n")?;
        let vm = vm_with(serde_json::json!({"ovirt-scripts": ["old.sh"]}))?;
        assert_eq!(vm_scripts(&vm, &p)?, vec![dir.path().join("old.sh")]);
        Ok(())
    }

    #[test]
    fn bad_and_missing_scripts_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = prefix(dir.path());
        let vm = vm_with(serde_json::json!({"deploy-scripts": "one.sh"}))?;
        let e = vm_scripts(&vm, &p).err().ok_or("a string is not a list")?;
        assert!(matches!(e, DeployError::BadSpec { .. }), "{e}");
        let vm = vm_with(serde_json::json!({"deploy-scripts": ["gone.sh"]}))?;
        let e = vm_scripts(&vm, &p).err().ok_or("missing script")?;
        let msg = e.to_string();
        assert!(msg.contains("gone.sh") && msg.contains("vm0"), "{msg}");
        let vm = vm_with(serde_json::json!({"deploy-scripts": ["$NO_SUCH_LAGO_VAR_X/a.sh"]}))?;
        let e = vm_scripts(&vm, &p).err().ok_or("undefined variable")?;
        assert!(e.to_string().contains("NO_SUCH_LAGO_VAR_X"), "{e}");
        Ok(())
    }

    #[test]
    fn failure_message_names_vm_script_code_and_tail() {
        let out: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let e = DeployError::Failed {
            vm: "vm0".into(),
            script: PathBuf::from("/p/scripts/s.sh"),
            code: 3,
            tail: output_tail(out.as_bytes(), b"boom\n"),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("deploy script /p/scripts/s.sh failed on VM vm0 with exit code 3"));
        assert!(msg.contains("line 30") && msg.contains("line 11") && !msg.contains("line 10\n"));
        assert!(msg.contains("  stderr:\n    boom"), "{msg}");
        let quiet = DeployError::Failed {
            vm: "vm0".into(),
            script: PathBuf::from("s.sh"),
            code: 1,
            tail: output_tail(b"", b""),
        };
        assert!(quiet.to_string().ends_with("(no output)"));
    }
}
