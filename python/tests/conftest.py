"""Fixtures of the SDK's pytest suite: real VMs from the embedded template,
inside the VM sandbox that scripts/test.sh starts (LAGO_E2E=1), each test
with its own lease and template stores."""

import contextlib
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
LAGO = TARGET / "lago"
EMBEDDED = pathlib.Path(os.environ.get("LAGO_EMBEDDED_REPO", "/var/lib/lago/repos/embedded"))
#: The repository's name (in its repo.json): only its own folder is searched.
EMBEDDED_NAME = "embedded"
#: The template the VMs boot (scripts/test.sh runs the suite on both).
TEMPLATE = os.environ.get("LAGO_E2E_TEMPLATE", "lago-tiny")

TWO_VMS = """
domains:
  vm01:
    memory: 256
    vcpu: 1
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
    nics: [{net: mgmt}]
    groups: [web]
  vm02:
    memory: 256
    vcpu: 1
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
    nics: [{net: mgmt}]
    groups: [db]
nets:
  mgmt: {type: nat, management: true}
"""

#: A VM as Lago's SDK sanity test has them: `vm0{n}` in `group{g}`, with
#: artifacts one of which is missing in the VM.
LAGO_VM = """
  vm0{n}:
    memory: 256
    vcpu: 1
    disks:
      - {{template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}}
    nics: [{{net: net-01}}]
    metadata: {{vm0{n}: vm0{n}}}
    groups: [group{g}]
    artifacts: [/should/not/exist, /root/custom, /etc/hosts]
"""


def lago_init(*numbers):
    """An init file of [`LAGO_VM`]s `vm0N` (group N-1) on one network."""
    return (
        "domains:"
        + "".join(LAGO_VM.format(n=n, g=n - 1) for n in numbers)
        + "nets:\n  net-01: {type: nat, management: true, dns_domain_name: lago.local}\n"
    )


#: Variables the test harness sets or reads (never lago): the sandbox's own
#: (LAGO_SANDBOX*, set by scripts/sandbox/run.sh), the test switch, the
#: template, where the template repository is. Any other LAGO_* variable
#: would hide what a plain `pip install` gives: refused.
HARNESS_VARS = {"LAGO_E2E", "LAGO_E2E_TEMPLATE", "LAGO_EMBEDDED_REPO"}
HARNESS_PREFIX = "LAGO_SANDBOX"


def pytest_configure(config):
    assert os.environ.get("LAGO_E2E") == "1", (
        "the SDK's tests boot VMs inside the VM sandbox: use scripts/test.sh"
    )
    extra = sorted(
        k
        for k in os.environ
        if k.startswith("LAGO") and k not in HARNESS_VARS and not k.startswith(HARNESS_PREFIX)
    )
    assert not extra, "the SDK's tests run with no lago variables; unset %s" % extra


def lago_config(folder):
    """`folder/config/lago/lago.conf` giving lago its own lease and template
    stores in `folder` and the embedded template repository (its folder
    alone: other repositories may be named `embedded` too); returns the
    folder to set as `$XDG_CONFIG_HOME` (as a user configures lago)."""
    folder = pathlib.Path(folder)
    config_home = folder / "config"
    (config_home / "lago").mkdir(parents=True, exist_ok=True)
    (config_home / "lago" / "lago.conf").write_text(
        "[lago]\n"
        "lease_dir = %s\n"
        "[init]\n"
        "template_store = %s\n"
        "template_repos = %s\n"
        "template_repo_name = %s\n"
        % (folder / "subnets", folder / "store", EMBEDDED, EMBEDDED_NAME)
    )
    return config_home


@pytest.fixture
def lago_env(tmp_path, monkeypatch):
    """A test folder with its own `lago.conf` ([`lago_config`]) for the SDK
    in this process and the `lago` binary and Python processes it starts.
    No LAGO_* variable and no plugin path: the plugins are the ones the
    installed package carries."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(lago_config(tmp_path)))
    return tmp_path


def initfile(folder, text, name="LagoInitFile"):
    """`text` written as an init file in `folder`, its template replaced by
    the one under test."""
    path = pathlib.Path(folder) / name
    path.write_text(text.replace("template_name: lago-tiny,", "template_name: %s," % TEMPLATE))
    return path


def lago_cli(*args, cwd=None):
    """The `lago` binary with `args`; returns the finished process."""
    return subprocess.run([str(LAGO), *args], cwd=cwd, capture_output=True, text=True)


def leftover_libvirt(tag):
    """libvirt domains and networks whose name holds the prefix's tag."""
    names = []
    for what in (["list", "--all", "--name"], ["net-list", "--all", "--name"]):
        out = subprocess.run(["virsh", "-c", "qemu:///system", *what], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        names += [n.strip() for n in out.stdout.splitlines() if tag in n]
    return names


@contextlib.contextmanager
def started(folder, text, **init_kwargs):
    """The environment of the init file `text`, initialized in
    `folder/workdir` (with `folder`'s own `lago.conf`) and started; yields
    `(env, init file path)` and destroys it after."""
    from lago import sdk

    folder = pathlib.Path(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(lago_config(folder)))
        config = initfile(folder, text)
        env = sdk.init(str(config), workdir=str(folder / "workdir"), **init_kwargs)
        try:
            env.start()
            yield env, config
        finally:
            env.destroy()
