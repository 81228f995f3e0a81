"""Fixtures of the SDK's pytest suite: real VMs from the embedded template,
inside the VM sandbox that scripts/test.sh starts (LAGO_E2E=1), each test
with its own lease and template stores."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
LAGO = TARGET / "lago"
EMBEDDED = pathlib.Path(os.environ.get("LAGO_EMBEDDED_REPO", "/var/lib/lago/repos/embedded"))
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


def pytest_configure(config):
    assert os.environ.get("LAGO_E2E") == "1", (
        "the SDK's tests boot VMs inside the VM sandbox: use scripts/test.sh"
    )


@pytest.fixture
def lago_env(tmp_path, monkeypatch):
    """A test folder whose `lago` settings (lease store, template store, the
    embedded repository, TCG, the workspace's plugins) reach both the SDK
    in this process and the `lago` binary and Python processes it starts,
    through environment variables only (as a Lago script gets them)."""
    settings = {
        "LAGO__LAGO__LEASE_DIR": tmp_path / "subnets",
        "LAGO__INIT__TEMPLATE_STORE": tmp_path / "store",
        "LAGO__INIT__TEMPLATE_REPOS": EMBEDDED.parent,
        "LAGO__INIT__TEMPLATE_REPO_NAME": "embedded",
        "LAGO__LAGO__DOMAIN_TYPE": "qemu",
        "LAGO_PLUGIN_PATH": ":".join(str(p) for p in sorted(TARGET.glob("liblago_*.so"))),
    }
    for k, v in settings.items():
        monkeypatch.setenv(k, str(v))
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
