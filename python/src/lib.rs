//! `lago._native`: the Python classes over [`lago::sdk`]. The pure-Python
//! package around it (`pysrc/lago`) adds `lago.sdk` (Lago's `init`,
//! `load_env`, `add_stream_logger`), the exception classes and the
//! `CommandStatus` named tuple; this module raises and builds those.
//!
//! Every call that reaches a provider or a VM releases the GIL. Log records
//! go to Python's `logging` (logger `lago`) as they happen.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use lago::sdk::{self, Env, InitOptions, LoadOptions, SdkError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};

mod log;

/// An environment shared by its Python `Env` and every `VM`/`Net` taken
/// from it; `None` once destroyed.
type Shared = Arc<RwLock<Option<Env<'static>>>>;

/// The Python exception class of an [`SdkError`] kind (in `lago._core`),
/// raised with the CLI's one-line message.
fn to_py(e: SdkError) -> PyErr {
    let (module, class) = match e {
        SdkError::NotFound(_) => ("lago._core", "LagoNotFoundError"),
        SdkError::BadInput(_) => ("lago._core", "LagoBadInputError"),
        SdkError::NotRunning { .. } => ("lago._core", "LagoVMNotRunningError"),
        SdkError::Ssh(_) => ("lago._core", "LagoSSHError"),
        SdkError::Provider(_) => ("lago._core", "LagoProviderError"),
        SdkError::MissingPaths { .. } => ("lago.plugins.vm", "ExtractPathNoPathError"),
        SdkError::Internal(_) => ("lago._core", "LagoInternalError"),
    };
    Python::with_gil(|py| {
        let cls = py
            .import(module)
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.downcast_into::<PyType>().map_err(PyErr::from));
        match cls {
            Ok(cls) => PyErr::from_type(cls, e.message().to_string()),
            Err(err) => err,
        }
    })
}

/// Runs `f` with the GIL released. A Ctrl-C (any exception a Python signal
/// handler raised) during it is raised when it returns, in place of its
/// result: the work itself finishes (or fails) first, so nothing is left
/// half-done by the interrupt.
fn released<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, SdkError> + Send,
{
    let result = py.allow_threads(f);
    if let Some(interrupt) = log::take_pending() {
        return Err(interrupt);
    }
    py.check_signals()?;
    result.map_err(to_py)
}

/// An error when the environment's prefix is gone from disk (destroyed
/// through another `Env` of it or by `lago destroy`): nothing of it is
/// left to reach.
fn still_there(env: &Env<'static>) -> Result<(), SdkError> {
    let path = env.prefix().path();
    if path.join("uuid").exists() {
        return Ok(());
    }
    Err(SdkError::BadInput(format!(
        "the prefix {} was destroyed (through another Env of it, or `lago destroy`); \
         this Env has nothing left to reach",
        path.display()
    )))
}

/// Drops the environment (its SSH sessions and keepalives) unless a call
/// of another thread is using it.
fn close(shared: &Shared) {
    if let Ok(mut guard) = shared.try_write() {
        drop(guard.take());
    }
}

/// Runs `f` on the environment, which it may change (snapshots), with the
/// GIL released.
fn run_mut<T, F>(py: Python<'_>, shared: &Shared, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&mut Env<'static>) -> Result<T, SdkError> + Send,
{
    released(py, || {
        let mut guard = shared.write().unwrap_or_else(|p| p.into_inner());
        let env = guard
            .as_mut()
            .ok_or_else(|| SdkError::BadInput("this environment was destroyed".to_string()))?;
        if let Err(gone) = still_there(env) {
            drop(guard);
            close(shared);
            return Err(gone);
        }
        f(env)
    })
}

/// Runs `f` on the environment with the GIL released.
fn run<T, F>(py: Python<'_>, shared: &Shared, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&Env<'static>) -> Result<T, SdkError> + Send,
{
    released(py, || {
        let guard = shared.read().unwrap_or_else(|p| p.into_inner());
        let env = guard
            .as_ref()
            .ok_or_else(|| SdkError::BadInput("this environment was destroyed".to_string()))?;
        if let Err(gone) = still_there(env) {
            drop(guard);
            close(shared);
            return Err(gone);
        }
        f(env)
    })
}

/// A JSON value as the Python object `json.loads` would give.
fn to_python(py: Python<'_>, value: &serde_json::Value) -> PyResult<PyObject> {
    let text = value.to_string();
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// Serializable data as a Python object (dicts, lists, str, int, ...).
fn data<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<PyObject> {
    let value =
        serde_json::to_value(value).map_err(|e| to_py(SdkError::Internal(e.to_string())))?;
    to_python(py, &value)
}

/// `lago._core.CommandStatus(code, out, err)` with `out` and `err` as
/// bytes, as Lago's `vm.ssh` returns them on Python 3.
fn command_status(py: Python<'_>, s: &sdk::CommandStatus) -> PyResult<PyObject> {
    let cls = py.import("lago._core")?.getattr("CommandStatus")?;
    let out = PyBytes::new(py, &s.out);
    let err = PyBytes::new(py, &s.err);
    Ok(cls.call1((s.code, out, err))?.unbind())
}

/// `module.name(*args)`: a helper of the pure-Python package.
fn call_helper<'py>(
    py: Python<'py>,
    module: &str,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    py.import(module)?.getattr(name)?.call1(args)
}

fn names(vm_names: Option<Vec<String>>) -> Vec<String> {
    vm_names.unwrap_or_default()
}

/// `[(section, key, value)]` from `{section: {key: value}}`.
fn overrides(
    config: Option<BTreeMap<String, BTreeMap<String, String>>>,
) -> Vec<(String, String, String)> {
    config
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(s, keys)| keys.into_iter().map(move |(k, v)| (s.clone(), k, v)))
        .collect()
}

/// Lago's `lago init`: see `lago.sdk.init` (the Python wrapper).
#[pyfunction]
#[pyo3(signature = (config, workdir, *, prefix_name=None, template_repo_path=None,
    template_repo_name=None, template_store=None, template_repos=None, skip_bootstrap=false,
    skip_build=false, set_current=false, settings=None, plugin_dir=None))]
#[allow(clippy::too_many_arguments)]
fn init(
    py: Python<'_>,
    config: PathBuf,
    workdir: PathBuf,
    prefix_name: Option<String>,
    template_repo_path: Option<String>,
    template_repo_name: Option<String>,
    template_store: Option<PathBuf>,
    template_repos: Option<PathBuf>,
    skip_bootstrap: bool,
    skip_build: bool,
    set_current: bool,
    settings: Option<BTreeMap<String, BTreeMap<String, String>>>,
    plugin_dir: Option<PathBuf>,
) -> PyResult<PyEnv> {
    let options = InitOptions {
        prefix_name,
        prefix_path: None,
        set_current,
        template_repo_path,
        template_repo_name,
        template_store,
        template_repos,
        skip_bootstrap,
        skip_build,
        ssh_key: None,
        load: LoadOptions {
            config: overrides(settings),
            plugin_dir,
        },
    };
    let env = released(py, || sdk::init(&config, &workdir, &options))?;
    Ok(PyEnv::new(env))
}

/// Lago's `sdk.load_env`: see `lago.sdk.load_env`.
#[pyfunction]
#[pyo3(signature = (workdir, prefix="current", *, settings=None, plugin_dir=None))]
fn load_env(
    py: Python<'_>,
    workdir: PathBuf,
    prefix: &str,
    settings: Option<BTreeMap<String, BTreeMap<String, String>>>,
    plugin_dir: Option<PathBuf>,
) -> PyResult<PyEnv> {
    let options = LoadOptions {
        config: overrides(settings),
        plugin_dir,
    };
    let env = released(py, || sdk::load_env(&workdir, Some(prefix), &options))?;
    Ok(PyEnv::new(env))
}

/// An initialized environment (Lago's `Prefix` behind the SDK object).
#[pyclass(name = "Env", module = "lago._native", frozen)]
struct PyEnv {
    shared: Shared,
}

/// Every environment this process opened (closed at interpreter exit).
static LIVE: Mutex<Vec<Weak<RwLock<Option<Env<'static>>>>>> = Mutex::new(Vec::new());

impl PyEnv {
    fn new(env: Env<'static>) -> Self {
        let shared = Arc::new(RwLock::new(Some(env)));
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&shared));
        PyEnv { shared }
    }

    fn vm_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        run(py, &self.shared, |env| {
            Ok(env.get_vms().into_keys().collect())
        })
    }
}

#[pymethods]
impl PyEnv {
    /// The prefix folder (str).
    #[getter]
    fn prefix(&self, py: Python<'_>) -> PyResult<String> {
        run(py, &self.shared, |env| {
            Ok(env.prefix().path().display().to_string())
        })
    }

    #[pyo3(signature = (vm_names=None, cold=false))]
    fn start(&self, py: Python<'_>, vm_names: Option<Vec<String>>, cold: bool) -> PyResult<()> {
        run(py, &self.shared, |env| {
            if cold {
                env.start_cold(&names(vm_names))
            } else {
                env.start(&names(vm_names))
            }
        })
    }

    #[pyo3(signature = (vm_names=None))]
    fn stop(&self, py: Python<'_>, vm_names: Option<Vec<String>>) -> PyResult<()> {
        run(py, &self.shared, |env| env.stop(&names(vm_names)))
    }

    #[pyo3(signature = (vm_names=None, reboot=false))]
    fn shutdown(
        &self,
        py: Python<'_>,
        vm_names: Option<Vec<String>>,
        reboot: bool,
    ) -> PyResult<()> {
        run(py, &self.shared, |env| {
            env.shutdown(&names(vm_names), reboot)
        })
    }

    /// Lago's `destroy()`; `force=True` is `lago destroy --force`: the
    /// prefix goes even when its provider cannot remove its VMs and
    /// networks (a warning names what may remain in libvirt).
    #[pyo3(signature = (force=false))]
    fn destroy(&self, py: Python<'_>, force: bool) -> PyResult<()> {
        released(py, || {
            let mut guard = self.shared.write().unwrap_or_else(|p| p.into_inner());
            match guard.take() {
                // Destroyed already through another Env of the prefix:
                // nothing left to do (its sessions close with it).
                Some(env) if still_there(&env).is_err() => Ok(()),
                Some(env) if force => env.destroy_forced(),
                Some(env) => env.destroy(),
                None => Ok(()),
            }
        })
    }

    fn cleanup(&self, py: Python<'_>) -> PyResult<()> {
        run(py, &self.shared, |env| env.cleanup())
    }

    fn status(&self, py: Python<'_>) -> PyResult<PyObject> {
        let tree = run(py, &self.shared, |env| Ok(env.status()))?;
        to_python(py, &tree)
    }

    fn get_vms(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let dict = PyDict::new(py);
        for name in self.vm_names(py)? {
            let vm = PyVm {
                shared: self.shared.clone(),
                name: name.clone(),
            };
            dict.set_item(name, Py::new(py, vm)?)?;
        }
        Ok(dict.unbind())
    }

    fn get_vm(&self, py: Python<'_>, name: String) -> PyResult<PyVm> {
        run(py, &self.shared, |env| env.get_vm(&name).map(|_| ()))?;
        Ok(PyVm {
            shared: self.shared.clone(),
            name,
        })
    }

    fn get_nets(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let dict = PyDict::new(py);
        let nets: Vec<String> = run(py, &self.shared, |env| {
            Ok(env.get_nets().into_keys().collect())
        })?;
        for name in nets {
            let net = PyNet {
                shared: self.shared.clone(),
                name: name.clone(),
            };
            dict.set_item(name, Py::new(py, net)?)?;
        }
        Ok(dict.unbind())
    }

    #[pyo3(signature = (name=None))]
    fn get_net(&self, py: Python<'_>, name: Option<String>) -> PyResult<PyNet> {
        let name = run(py, &self.shared, |env| {
            env.get_net(name.as_deref()).map(|n| n.name().to_string())
        })?;
        Ok(PyNet {
            shared: self.shared.clone(),
            name,
        })
    }

    fn deploy(&self, py: Python<'_>) -> PyResult<PyObject> {
        let runs = run(py, &self.shared, |env| env.deploy())?;
        data(py, &runs)
    }

    #[pyo3(signature = (output_dir, ignore_nopath=false))]
    fn collect_artifacts(
        &self,
        py: Python<'_>,
        output_dir: PathBuf,
        ignore_nopath: bool,
    ) -> PyResult<PyObject> {
        let report = run(py, &self.shared, |env| {
            env.collect_artifacts(&output_dir, ignore_nopath)
        })?;
        data(py, &report)
    }

    #[pyo3(signature = (keys=None))]
    fn ansible_inventory(&self, py: Python<'_>, keys: Option<Vec<String>>) -> PyResult<String> {
        run(py, &self.shared, |env| {
            env.ansible_inventory(&keys.unwrap_or_default())
        })
    }

    /// Lago's `ansible_inventory_temp_file(keys=...)`: a context manager
    /// yielding a named temporary file holding the inventory (removed on
    /// exit). `keys` are spec keys (e.g. `groups`) to group the VMs by.
    #[pyo3(signature = (keys=None))]
    fn ansible_inventory_temp_file(
        &self,
        py: Python<'_>,
        keys: Option<Vec<String>>,
    ) -> PyResult<PyObject> {
        let text = self.ansible_inventory(py, keys)?;
        Ok(call_helper(py, "lago.lago_ansible", "_inventory_temp_file", (text,))?.unbind())
    }

    /// `lago snapshot NAME [-n VM...]` (Lago's `create_snapshots(name)` for
    /// every VM).
    #[pyo3(signature = (name, vm_names=None))]
    fn snapshot(
        &self,
        py: Python<'_>,
        name: String,
        vm_names: Option<Vec<String>>,
    ) -> PyResult<()> {
        run_mut(py, &self.shared, |env| {
            env.snapshot(&name, &names(vm_names))
        })
    }

    /// Lago's `create_snapshots(name)`: every VM.
    fn create_snapshots(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.snapshot(py, name, None)
    }

    /// `lago revert NAME [-n VM...]` (Lago's `revert_snapshots(name)`).
    #[pyo3(signature = (name, vm_names=None))]
    fn revert(&self, py: Python<'_>, name: String, vm_names: Option<Vec<String>>) -> PyResult<()> {
        run(py, &self.shared, |env| env.revert(&name, &names(vm_names)))
    }

    /// Lago's `revert_snapshots(name)`: every VM.
    fn revert_snapshots(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.revert(py, name, None)
    }

    /// `lago snapshot -l`: `{VM: {snapshot: [disk, ...]}}`.
    #[pyo3(signature = (vm_names=None))]
    fn list_snapshots(&self, py: Python<'_>, vm_names: Option<Vec<String>>) -> PyResult<PyObject> {
        let tree = run(py, &self.shared, |env| env.list_snapshots(&names(vm_names)))?;
        to_python(py, &tree)
    }

    /// Lago's `get_snapshots()`: as [`list_snapshots`] for every VM.
    fn get_snapshots(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.list_snapshots(py, None)
    }

    /// `lago export` (Lago's `export_vms`): the disks and an init file into
    /// `export_dir`; returns what was (or would be) exported. `out_format`
    /// is Lago's init-file format: YAML (Lago's default `YAMLOutFormatPlugin`
    /// or `"yaml"`), the only one lago writes; anything else is refused.
    /// `export` is the same method (the Rust-native name, set in `lago.sdk`).
    #[pyo3(signature = (vms_names=None, standalone=false, export_dir=PathBuf::from("."),
        compress=false, init_file_name="LagoInitFile".to_string(), out_format=None,
        collect_only=false, with_threads=true))]
    #[allow(clippy::too_many_arguments)]
    fn export_vms(
        &self,
        py: Python<'_>,
        vms_names: Option<Vec<String>>,
        standalone: bool,
        export_dir: PathBuf,
        compress: bool,
        init_file_name: String,
        out_format: Option<&Bound<'_, PyAny>>,
        collect_only: bool,
        with_threads: bool,
    ) -> PyResult<PyObject> {
        if let Some(format) = out_format {
            check_yaml_format(format)?;
        }
        let opts = sdk::ExportOptions {
            vms: names(vms_names),
            standalone,
            compress,
            dst_dir: export_dir,
            init_file_name,
            collect_only,
            with_threads,
        };
        let tree = run(py, &self.shared, |env| env.export(&opts))?;
        to_python(py, &tree)
    }

    /// `lago console VM`: the VM's serial console on this terminal until
    /// the user leaves it; returns the exit code.
    fn console(&self, py: Python<'_>, vm_name: String) -> PyResult<i32> {
        run(py, &self.shared, |env| env.console(&vm_name))
    }
}

/// One VM of an environment (Lago's VM object).
#[pyclass(name = "VM", module = "lago._native", frozen)]
struct PyVm {
    shared: Shared,
    name: String,
}

impl PyVm {
    fn with<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(sdk::Vm<'_, 'static>) -> Result<T, SdkError> + Send,
    {
        run(py, &self.shared, |env| f(env.get_vm(&self.name)?))
    }
}

/// `result`'s error of class `current` (in `lago._core`) raised as Lago's
/// subclass `lago_class` of it (in `lago.plugins.vm`), message kept.
fn as_lago_class<T>(
    py: Python<'_>,
    result: PyResult<T>,
    current: &str,
    lago_class: &str,
) -> PyResult<T> {
    result.or_else(|e| {
        let current = py.import("lago._core")?.getattr(current)?;
        if !e.is_instance(py, &current) {
            return Err(e);
        }
        let cls = py.import("lago.plugins.vm")?.getattr(lago_class)?;
        let message = e.value(py).str()?;
        Err(PyErr::from_value(cls.call1((message,))?))
    })
}

/// `export_vms`'s `out_format`: `None`, `"yaml"` or a YAML output-format
/// object (Lago's `YAMLOutFormatPlugin`, by its class name).
fn check_yaml_format(format: &Bound<'_, PyAny>) -> PyResult<()> {
    if format.is_none() {
        return Ok(());
    }
    let name = match format.extract::<String>() {
        Ok(text) => text,
        Err(_) => format.get_type().name()?.to_string(),
    };
    if name.to_ascii_lowercase().contains("yaml") {
        return Ok(());
    }
    Err(to_py(SdkError::BadInput(format!(
        "export_vms: out_format {name:?} is not supported; the exported init file is YAML \
         (out_format=None, \"yaml\" or Lago's YAMLOutFormatPlugin)"
    ))))
}

/// A command as a list of arguments; a `str` is refused with a TypeError
/// saying so (it would be one argument, or split where the caller did not
/// mean it).
fn command_args(method: &str, command: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(text) = command.downcast::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "VM.{method}: pass the command as a list of arguments, e.g. {:?}, not a string",
            text.to_string().split_whitespace().collect::<Vec<_>>()
        )));
    }
    command.extract().map_err(|e: PyErr| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "VM.{method}: the command must be a list of str arguments ({e})"
        ))
    })
}

/// Command input as Lago takes it: `str` (UTF-8) or `bytes`.
fn input_bytes(data: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<u8>>> {
    let Some(data) = data else { return Ok(None) };
    if let Ok(b) = data.downcast::<PyBytes>() {
        return Ok(Some(b.as_bytes().to_vec()));
    }
    Ok(Some(data.extract::<String>()?.into_bytes()))
}

#[pymethods]
impl PyVm {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn ip(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |vm| Ok(vm.ip().map(|ip| ip.to_string())))
    }

    fn all_ips(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with(py, |vm| {
            Ok(vm.all_ips().iter().map(ToString::to_string).collect())
        })
    }

    fn ips_in_net(&self, py: Python<'_>, net_name: String) -> PyResult<Vec<String>> {
        self.with(py, |vm| {
            Ok(vm
                .ips_in_net(&net_name)
                .iter()
                .map(ToString::to_string)
                .collect())
        })
    }

    fn nics(&self, py: Python<'_>) -> PyResult<PyObject> {
        let nics = self.with(py, |vm| Ok(vm.nics().to_vec()))?;
        data(py, &nics)
    }

    fn nets(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with(py, |vm| Ok(vm.nets()))
    }

    #[getter]
    fn mgmt_net(&self, py: Python<'_>) -> PyResult<PyNet> {
        let name = self.with(py, |vm| Ok(vm.mgmt_net().to_string()))?;
        Ok(PyNet {
            shared: self.shared.clone(),
            name,
        })
    }

    fn state(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |vm| vm.state())
    }

    fn running(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |vm| vm.running())
    }

    fn root_password(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |vm| Ok(vm.root_password().map(str::to_string)))
    }

    fn distro(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |vm| Ok(vm.distro().to_string()))
    }

    #[getter]
    fn metadata(&self, py: Python<'_>) -> PyResult<PyObject> {
        let meta = self.with(py, |vm| Ok(vm.metadata().clone()))?;
        data(py, &meta)
    }

    #[getter]
    fn vm_type(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |vm| Ok(vm.vm_type().to_string()))
    }

    #[getter]
    fn groups(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.with(py, |vm| Ok(vm.groups().to_vec()))
    }

    #[getter]
    fn disks(&self, py: Python<'_>) -> PyResult<PyObject> {
        let disks = self.with(py, |vm| Ok(vm.disks().to_vec()))?;
        data(py, &disks)
    }

    #[getter]
    fn spec(&self, py: Python<'_>) -> PyResult<PyObject> {
        let spec = self.with(py, |vm| Ok(vm.spec().clone()))?;
        data(py, &spec)
    }

    #[pyo3(signature = (command, data=None))]
    fn ssh(
        &self,
        py: Python<'_>,
        command: &Bound<'_, PyAny>,
        data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let command = command_args("ssh", command)?;
        let input = input_bytes(data)?;
        let status = self.with(py, |vm| vm.ssh_with_input(&command, input.as_deref()))?;
        command_status(py, &status)
    }

    /// Lago's `ssh_script(path, show_output=True)`: the script runs in the
    /// VM; its output is returned (`show_output` is accepted for Lago's
    /// callers: the output is logged at debug level either way).
    #[pyo3(signature = (path, show_output=true))]
    fn ssh_script(&self, py: Python<'_>, path: PathBuf, show_output: bool) -> PyResult<PyObject> {
        let _ = show_output;
        let status = self.with(py, |vm| vm.ssh_script(&path))?;
        command_status(py, &status)
    }

    /// As Lago: a `CommandStatus` whose `out` and `err` are empty (the
    /// session went to the terminal).
    #[pyo3(signature = (command=None))]
    fn interactive_ssh(
        &self,
        py: Python<'_>,
        command: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let command = match command {
            Some(c) => command_args("interactive_ssh", c)?,
            None => Vec::new(),
        };
        let code = self.with(py, |vm| vm.interactive_ssh(&command))?;
        let status = sdk::CommandStatus {
            code,
            out: Vec::new(),
            err: Vec::new(),
        };
        command_status(py, &status)
    }

    #[pyo3(signature = (timeout=None))]
    fn wait_for_ssh(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        self.with(py, |vm| {
            let timeout = match timeout {
                Some(t) if t.is_finite() && t > 0.0 => Duration::from_secs_f64(t),
                Some(t) => {
                    return Err(SdkError::BadInput(format!(
                        "timeout must be a positive number of seconds, not {t}"
                    )))
                }
                None => vm.ssh_budget(),
            };
            vm.wait_for_ssh(timeout)
        })
    }

    #[pyo3(signature = (tries=None))]
    fn ssh_reachable(&self, py: Python<'_>, tries: Option<u32>) -> PyResult<bool> {
        self.with(py, |vm| Ok(vm.ssh_reachable(tries.unwrap_or(1))))
    }

    #[pyo3(signature = (local_path, remote_path, recursive=true))]
    fn copy_to(
        &self,
        py: Python<'_>,
        local_path: PathBuf,
        remote_path: String,
        recursive: bool,
    ) -> PyResult<()> {
        let copied = self.with(py, |vm| vm.copy_to(&local_path, &remote_path, recursive));
        as_lago_class(py, copied, "LagoBadInputError", "LagoCopyFilesToVMError")
    }

    #[pyo3(signature = (remote_path, local_path, recursive=true))]
    fn copy_from(
        &self,
        py: Python<'_>,
        remote_path: String,
        local_path: PathBuf,
        recursive: bool,
    ) -> PyResult<()> {
        let copied = self.with(py, |vm| vm.copy_from(&remote_path, &local_path, recursive));
        as_lago_class(py, copied, "LagoNotFoundError", "LagoCopyFilesFromVMError")
    }

    /// Lago's `collect_artifacts(output_dir, ignore_nopath)`: this VM's
    /// artifacts into `output_dir`, each as `<path with / as _>`; a path
    /// missing in the VM raises `lago.plugins.vm.ExtractPathNoPathError`
    /// (after the others were collected) unless `ignore_nopath`. Returns
    /// `{collected, missing, warnings}`.
    #[pyo3(signature = (output_dir, ignore_nopath=false))]
    fn collect_artifacts(
        &self,
        py: Python<'_>,
        output_dir: PathBuf,
        ignore_nopath: bool,
    ) -> PyResult<PyObject> {
        let report = run(py, &self.shared, |env| {
            env.collect_vm_artifacts(&self.name, &output_dir, ignore_nopath)
        })?;
        if !ignore_nopath && !report.missing.is_empty() {
            let cls = py
                .import("lago.plugins.vm")?
                .getattr("ExtractPathNoPathError")?;
            let what = format!("VM {}: {}", self.name, report.missing.join(", "));
            return Err(PyErr::from_value(cls.call1((what,))?));
        }
        data(py, &report)
    }

    /// Lago's `extract_paths(paths, ignore_nopath)`: each `(path in the VM,
    /// path on the host)` copied out (into the host path when it is a
    /// folder). A missing path raises `ExtractPathNoPathError` unless
    /// `ignore_nopath`; other failures `ExtractPathError`.
    #[pyo3(signature = (paths, ignore_nopath=false))]
    fn extract_paths(
        slf: &Bound<'_, Self>,
        paths: Vec<(String, PathBuf)>,
        ignore_nopath: bool,
    ) -> PyResult<()> {
        call_helper(
            slf.py(),
            "lago.plugins.vm",
            "_extract_paths",
            (slf, paths, ignore_nopath),
        )?;
        Ok(())
    }

    /// Lago's `create_snapshot(name)`: a snapshot of this VM alone.
    fn create_snapshot(&self, py: Python<'_>, name: String) -> PyResult<()> {
        run_mut(py, &self.shared, |env| {
            env.snapshot(&name, std::slice::from_ref(&self.name))
        })
    }

    /// Lago's `revert_snapshot(name)`: this VM alone back to `name`.
    fn revert_snapshot(&self, py: Python<'_>, name: String) -> PyResult<()> {
        run(py, &self.shared, |env| {
            env.revert(&name, std::slice::from_ref(&self.name))
        })
    }

    /// Lago's `interactive_console()`: the serial console on this terminal;
    /// returns the exit code.
    fn interactive_console(&self, py: Python<'_>) -> PyResult<i32> {
        run(py, &self.shared, |env| env.console(&self.name))
    }

    fn service(&self, py: Python<'_>, name: String) -> PyResult<PyService> {
        // Detects (and stores) the VM's service manager on first use.
        let provider = self.with(py, |vm| vm.service(&name).map(|s| s.provider().to_string()))?;
        Ok(PyService {
            shared: self.shared.clone(),
            vm: self.name.clone(),
            name,
            provider,
        })
    }

    fn __repr__(&self) -> String {
        format!("<VM {}>", self.name)
    }
}

/// One service of a VM (Lago's `vm.service(name)`).
#[pyclass(name = "Service", module = "lago._native", frozen)]
struct PyService {
    shared: Shared,
    vm: String,
    name: String,
    provider: String,
}

impl PyService {
    fn with<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&sdk::Service<'static>) -> Result<T, lago::error::Error> + Send,
    {
        run(py, &self.shared, |env| {
            let svc = env.get_vm(&self.vm)?.service(&self.name)?;
            f(&svc).map_err(SdkError::from)
        })
    }
}

#[pymethods]
impl PyService {
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The vm-service plugin in charge (`systemd`, `sysvinit`, ...).
    #[getter]
    fn provider(&self) -> String {
        self.provider.clone()
    }

    fn state(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |s| s.state().map(|st| st.as_str().to_string()))
    }

    fn alive(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |s| s.alive())
    }

    fn exists(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |s| s.exists())
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.start())
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |s| s.stop())
    }
}

/// One network of an environment.
#[pyclass(name = "Net", module = "lago._native", frozen)]
struct PyNet {
    shared: Shared,
    name: String,
}

impl PyNet {
    fn with<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(sdk::Net<'_>) -> T + Send,
    {
        run(py, &self.shared, |env| {
            Ok(f(env.get_net(Some(&self.name))?))
        })
    }
}

#[pymethods]
impl PyNet {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn gw(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |n| n.gw().map(|g| g.to_string()))
    }

    fn is_management(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |n| n.is_management())
    }

    fn mapping(&self, py: Python<'_>) -> PyResult<BTreeMap<String, String>> {
        self.with(py, |n| {
            n.mapping()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect()
        })
    }

    fn resolve(&self, py: Python<'_>, name: String) -> PyResult<Option<String>> {
        self.with(py, |n| n.resolve(&name).map(|ip| ip.to_string()))
    }

    /// The network's stored spec (a dict, Lago's `net.spec`).
    #[getter]
    fn spec(&self, py: Python<'_>) -> PyResult<PyObject> {
        let spec = self.with(py, |n| n.spec().clone())?;
        data(py, &spec)
    }

    fn __repr__(&self) -> String {
        format!("<Net {}>", self.name)
    }
}

/// Where the wheel carries its default plugins (`lago/plugins`): searched
/// after every other plugin folder. Called by `lago/__init__.py` at import.
#[pyfunction]
fn _set_plugin_dir(dir: PathBuf) {
    sdk::set_package_plugin_dir(dir);
}

/// At interpreter exit (an `atexit` hook of `lago/__init__.py`): closes
/// every environment still open (its SSH sessions and their threads; the
/// VMs stay, as after the process ends), then stops sending log records to
/// Python, which is about to finalize. An environment busy in another
/// thread is left as it is.
#[pyfunction]
fn _at_exit(py: Python<'_>) {
    let live: Vec<Shared> = LIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .filter_map(|w| w.upgrade())
        .collect();
    py.allow_threads(|| {
        for shared in &live {
            close(shared);
        }
    });
    log::stop();
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    log::install();
    m.add_function(wrap_pyfunction!(_set_plugin_dir, m)?)?;
    m.add_function(wrap_pyfunction!(_at_exit, m)?)?;
    m.add_function(wrap_pyfunction!(init, m)?)?;
    m.add_function(wrap_pyfunction!(load_env, m)?)?;
    m.add_class::<PyEnv>()?;
    m.add_class::<PyVm>()?;
    m.add_class::<PyNet>()?;
    m.add_class::<PyService>()?;
    Ok(())
}
