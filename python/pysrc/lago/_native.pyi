"""Type stubs of ``lago._native`` (the Rust classes behind ``lago.sdk``).

Every method that reaches a provider or a VM releases the GIL and raises a
``lago.LagoError`` subclass on failure: ``LagoNotFoundError`` (unknown
name), ``LagoBadInputError``, ``LagoVMNotRunningError``, ``LagoSSHError``,
``LagoProviderError``, ``LagoInternalError``.
"""

from os import PathLike
from typing import IO, Any, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._core import CommandStatus

_Path = Union[str, "PathLike[str]"]
_Settings = Mapping[str, Mapping[str, str]]

def init(
    config: _Path,
    workdir: _Path,
    *,
    prefix_name: Optional[str] = ...,
    template_repo_path: Optional[str] = ...,
    template_repo_name: Optional[str] = ...,
    template_store: Optional[_Path] = ...,
    template_repos: Optional[_Path] = ...,
    skip_bootstrap: bool = ...,
    skip_build: bool = ...,
    set_current: bool = ...,
    settings: Optional[_Settings] = ...,
    plugin_dir: Optional[_Path] = ...,
) -> Env: ...
def load_env(
    workdir: _Path,
    prefix: str = ...,
    *,
    settings: Optional[_Settings] = ...,
    plugin_dir: Optional[_Path] = ...,
) -> Env: ...

class Env:
    """An initialized environment (Lago's prefix)."""

    @property
    def prefix(self) -> str:
        """The prefix folder."""
    def start(self, vm_names: Optional[List[str]] = None, cold: bool = False) -> None:
        """Start the networks and the VMs (all when None); returns when each
        answers SSH (its boot_time_sec, else ssh_tries x ssh_timeout seconds).
        A VM starts warm (restored from its template's warm image) where it
        can; cold=True boots every VM (lago start --cold)."""
    def stop(self, vm_names: Optional[List[str]] = None) -> None:
        """Power the VMs off at once; idle networks are stopped too."""
    def shutdown(self, vm_names: Optional[List[str]] = None, reboot: bool = False) -> None:
        """ACPI shutdown (or reboot) of the VMs."""
    def destroy(self, force: bool = False) -> None:
        """Remove the VMs, networks, leases and the prefix folder; the Env
        (and its VMs) cannot be used afterwards. force=True (lago destroy
        --force): the prefix goes even when its VMs and networks cannot be
        removed through their provider (a warning names what may remain)."""
    def cleanup(self) -> None:
        """Remove the VMs and networks and release the leases; files stay."""
    def status(self) -> Dict[str, Any]:
        """The tree ``lago -f json status`` prints, as Python data."""
    def get_vms(self) -> Dict[str, VM]:
        """Every VM by name (a plain dict: an unknown name is a KeyError)."""
    def get_vm(self, name: str) -> VM:
        """The VM ``name``; LagoNotFoundError when there is none."""
    def get_nets(self) -> Dict[str, Net]:
        """Every network by name."""
    def get_net(self, name: Optional[str] = None) -> Net:
        """The network ``name``; None: the management network."""
    def deploy(self) -> Dict[str, List[Dict[str, Any]]]:
        """Run each VM's deploy scripts; per VM: [{script, code, seconds}]."""
    def collect_artifacts(self, output_dir: _Path, ignore_nopath: bool = False) -> Dict[str, Any]:
        """Collect each VM's artifacts into output_dir/<vm>/; returns
        {output, rotated, vms: {vm: {collected, missing, warnings}}}."""
    def ansible_inventory(self, keys: Optional[List[str]] = None) -> str:
        """The INI inventory ``lago ansible_hosts`` prints (keys default:
        vm-type, groups, vm-provider)."""
    def ansible_inventory_temp_file(self, keys: Optional[List[str]] = None) -> ContextManager[IO[str]]:
        """Lago's: a context manager yielding a NamedTemporaryFile holding
        the inventory (``inv.name``), removed when the block ends."""
    def snapshot(self, name: str, vm_names: Optional[List[str]] = None) -> None:
        """``lago snapshot NAME``: the VMs named (all: None) under ``name``."""
    def create_snapshots(self, name: str) -> None:
        """Lago's name: every VM."""
    def revert(self, name: str, vm_names: Optional[List[str]] = None) -> None:
        """``lago revert NAME``: disks and run state back; running VMs answer
        SSH when it returns."""
    def revert_snapshots(self, name: str) -> None:
        """Lago's name: every VM."""
    def list_snapshots(self, vm_names: Optional[List[str]] = None) -> Dict[str, Dict[str, List[str]]]:
        """``{vm: {snapshot: [disk, ...]}}``."""
    def get_snapshots(self) -> Dict[str, Dict[str, List[str]]]:
        """Lago's name of ``list_snapshots()``."""
    def export_vms(self, vms_names: Optional[List[str]] = None, standalone: bool = False,
                   export_dir: _Path = ".", compress: bool = False,
                   init_file_name: str = "LagoInitFile", out_format: Any = None,
                   collect_only: bool = False, with_threads: bool = True) -> Any:
        """``lago export`` (Lago's ``export_vms``): disks and an init file into
        export_dir; returns what was (collect_only: would be) exported.
        out_format: None, "yaml" or Lago's YAMLOutFormatPlugin (the init
        file is YAML); anything else raises LagoBadInputError."""
    export = export_vms
    def console(self, vm_name: str) -> int:
        """``lago console VM`` on this terminal; the exit code."""

class VM:
    """One VM of an environment."""

    def name(self) -> str: ...
    def ip(self) -> Optional[str]:
        """Its address on its management network."""
    def all_ips(self) -> List[str]: ...
    def ips_in_net(self, net_name: str) -> List[str]: ...
    def nics(self) -> List[Dict[str, Any]]: ...
    def nets(self) -> List[str]: ...
    @property
    def mgmt_net(self) -> Net: ...
    def state(self) -> str:
        """The provider's state: 'running', 'shut off', 'down', ..."""
    def running(self) -> bool: ...
    def root_password(self) -> Optional[str]: ...
    def distro(self) -> str: ...
    @property
    def metadata(self) -> Dict[str, Any]: ...
    @property
    def vm_type(self) -> str: ...
    @property
    def groups(self) -> List[str]: ...
    @property
    def disks(self) -> List[Dict[str, Any]]: ...
    @property
    def spec(self) -> Dict[str, Any]: ...
    def ssh(self, command: List[str], data: Union[str, bytes, None] = None) -> CommandStatus:
        """Run ``command`` (one argument per element) with ``data`` on stdin;
        a non-zero exit code is returned, not raised."""
    def ssh_script(self, path: _Path, show_output: bool = True) -> CommandStatus:
        """Run a local script in the VM (``show_output``: accepted, Lago's)."""
    def interactive_ssh(self, command: Optional[List[str]] = None) -> CommandStatus:
        """A session on this terminal; ``code`` is the remote exit code
        (``out`` and ``err`` are empty: they went to the terminal)."""
    def wait_for_ssh(self, timeout: Optional[float] = None) -> None:
        """Wait up to ``timeout`` seconds (default: the start budget) until
        the VM answers SSH; LagoSSHError when it does not."""
    def ssh_reachable(self, tries: Optional[int] = None) -> bool:
        """Whether the VM answers SSH within ``tries`` tries."""
    def copy_to(self, local_path: _Path, remote_path: str, recursive: bool = True) -> None: ...
    def copy_from(self, remote_path: str, local_path: _Path, recursive: bool = True) -> None: ...
    def service(self, name: str) -> Service:
        """The service ``name`` (its vm-service plugin detected on first use)."""
    def collect_artifacts(self, output_dir: _Path, ignore_nopath: bool = False) -> Dict[str, Any]:
        """Lago's: this VM's artifacts into output_dir/<path with / as _>;
        a missing path raises lago.plugins.vm.ExtractPathNoPathError unless
        ignore_nopath. Returns {collected, missing, warnings}."""
    def extract_paths(self, paths: Sequence[Tuple[str, _Path]], ignore_nopath: bool = False) -> None:
        """Lago's: each (guest path, host path) copied out (into the host path
        when it is a folder); ExtractPathNoPathError / ExtractPathError."""
    def create_snapshot(self, name: str) -> None: ...
    def revert_snapshot(self, name: str) -> None: ...
    def interactive_console(self) -> int:
        """The serial console on this terminal; the exit code."""

class Service:
    """One service of a VM."""

    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str:
        """The vm-service plugin in charge: 'systemd', 'sysvinit', ..."""
    def state(self) -> str:
        """'MISSING', 'INACTIVE' or 'ACTIVE'."""
    def alive(self) -> bool: ...
    def exists(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...

class Net:
    """One network of an environment."""

    def name(self) -> str: ...
    def gw(self) -> Optional[str]: ...
    def is_management(self) -> bool: ...
    def mapping(self) -> Dict[str, str]:
        """DNS name -> address on this network."""
    def resolve(self, name: str) -> Optional[str]: ...
    @property
    def spec(self) -> Dict[str, Any]:
        """The stored network spec (Lago's ``net.spec``)."""
