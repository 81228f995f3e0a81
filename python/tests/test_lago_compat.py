"""Lago's modules, names and semantics as the public suites use them (Lago's
own functional SDK tests, the oVirt system tests, lago-workshop): their
shapes, not copies, against real VMs from the embedded template, with the
package as `pip install` gives it (its own plugins, no LAGO_* variable).

Order matters for time only: one module-wide environment (two VMs) serves
every test after the ones that need no VM."""

import filecmp
import logging
import os
import pathlib
import subprocess
import sys
import threading
import time
import types
import uuid

import pytest

import lago
from lago import log_utils, sdk
from lago import prefix as lago_prefix
from lago.lago_ansible import LagoAnsible
from lago.plugins.vm import ExtractPathError, ExtractPathNoPathError
from lago.utils import (
    CommandStatus,
    EggTimer,
    ExceptionTimer,
    LagoException,
    LagoUserException,
    TimerException,
    VectorThread,
    func_vector,
    get_qemu_info,
    invoke_different_funcs_in_parallel,
    invoke_in_parallel,
    run_command,
)
from lago.workdir import PrefixAlreadyExists

from conftest import ROOT, initfile, lago_init, started

#: Lago's SDK sanity test's two VMs: vm01 in group0, vm02 in group1.
INIT = lago_init(1, 2)

ONE_VM = """
domains:
  solo:
    memory: 256
    vcpu: 1
    disks:
      - {template_name: lago-tiny, type: template, name: root, dev: vda, format: qcow2}
    nics: [{net: mgmt}]
nets:
  mgmt: {type: nat, management: true}
"""


# ---- lago.utils and friends: no VM.


def test_run_command_is_lagos(tmp_path):
    res = run_command(["sh", "-c", "printf 'out\\377'; printf err >&2; exit 3"])
    assert isinstance(res, CommandStatus) and isinstance(res, tuple)
    code, out, err = res
    assert (code, out, err) == (3, b"out\xff", b"err")
    assert res, "Lago's CommandStatus is true when the command failed"
    assert res.out_text == "out\ufffd"
    ok = run_command(["cat"], input_data="fed")
    assert (ok.code, ok.out.decode(), bool(ok)) == (0, "fed", False)
    # No shell: an argument is one argument.
    assert run_command(["echo", "a b; false"]).out == b"a b; false\n"
    assert lago.utils.CommandStatus is lago.CommandStatus


def test_get_qemu_info(tmp_path):
    base = tmp_path / "base.qcow2"
    top = tmp_path / "top.qcow2"
    assert not run_command(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"])
    assert not run_command(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(top)]
    )
    info = get_qemu_info(str(top))
    assert info["format"] == "qcow2" and info["virtual-size"] == 16 * 1024 * 1024
    chain = get_qemu_info(str(top), backing_chain=True)
    assert [os.path.basename(i["filename"]) for i in chain] == ["top.qcow2", "base.qcow2"]
    with pytest.raises(RuntimeError) as err:
        get_qemu_info(str(tmp_path / "nothing.qcow2"))
    assert "nothing.qcow2" in str(err.value)


def test_parallel_helpers():
    seen = set()

    def work(a, b):
        seen.add(threading.current_thread().name)
        time.sleep(0.05)
        return a + b

    assert invoke_in_parallel(work, [1, 2, 3], [10, 20, 30]) == [11, 22, 33]
    assert len(seen) == 3, "one thread per call"
    assert invoke_different_funcs_in_parallel(lambda: "a", lambda: "b") == ["a", "b"]

    def boom(x):
        raise ValueError("bad %s" % x)

    vt = VectorThread(func_vector(boom, [(1,), (2,)]))
    vt.start_all()
    with pytest.raises(ValueError, match="bad 1"):
        vt.join_all()


def test_timers():
    with EggTimer(60) as t:
        assert not t.elapsed()
    with EggTimer(0) as t:
        time.sleep(0.01)
        assert t.elapsed()
    with pytest.raises(TimerException):
        with ExceptionTimer(1):
            time.sleep(5)


def test_exception_hierarchy_is_lagos():
    assert issubclass(LagoUserException, LagoException)
    assert issubclass(lago.LagoError, LagoException)
    assert issubclass(lago.LagoBadInputError, LagoUserException)
    assert issubclass(PrefixAlreadyExists, RuntimeError)
    assert issubclass(ExtractPathNoPathError, LagoException)
    assert issubclass(ExtractPathError, LagoException)
    assert str(ExtractPathNoPathError("x")) == "Failed to extract files: x"


def test_log_utils_task(caplog):
    caplog.set_level(logging.DEBUG)
    with log_utils.LogTask("a task"):
        logging.info("inside")
    with pytest.raises(KeyError):
        with log_utils.LogTask("failing"):
            raise KeyError("x")
    text = caplog.text
    assert "start taska task" in text and "end taska task" in text
    assert "end taskfailing" in text
    assert isinstance(log_utils.get_default_log_formatter(), logging.Formatter)


def test_import_says_what_the_machine_lacks(tmp_path):
    # A PATH without qemu-img: importing lago says so, in one message.
    out = subprocess.run(
        [sys.executable, "-c", "import lago"],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lago cannot run on this machine") and "qemu-img" in last


def test_plugins_come_from_the_package():
    plugins = pathlib.Path(lago.__file__).parent / "plugins"
    names = sorted(p.name for p in plugins.glob("liblago_*.so"))
    assert names == [
        "liblago_out_dot.so",
        "liblago_provider_local_libvirt.so",
        "liblago_provider_ssh.so",
        "liblago_service_systemd.so",
        "liblago_service_sysvinit.so",
    ]


# ---- One environment for the rest, as Lago's SDK sanity test holds it.


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    logfile = folder / "external.log"
    with started(folder, INIT, logfile=str(logfile)) as (env, config):
        yield types.SimpleNamespace(
            env=env, folder=folder, workdir=folder / "workdir", logfile=logfile, config=config
        )


def test_custom_log(world):
    msg = "test_custom_log " + str(uuid.uuid4())
    logging.root.info(msg)
    text = world.logfile.read_text()
    assert msg in text
    # lago's own records reach the same file through logger `lago`.
    assert "::lago::" in text


def test_prefix_log_like_the_cli(world):
    log = pathlib.Path(world.env.prefix) / "logs" / "lago.log"
    text = log.read_text()
    assert "DEBUG lago" in text and "vm01" in text


def test_vms_nets_and_specs(world):
    vms = world.env.get_vms()
    assert sorted(vms) == ["vm01", "vm02"]
    nets = world.env.get_nets()
    assert sorted(nets) == ["net-01"]
    for name, vm in vms.items():
        assert vm.nets() == ["net-01"]
        assert vm.spec["metadata"][name] == vm.metadata[name] == name
        assert vm.running() and vm.state() == "running"
    net = nets["net-01"]
    spec = net.spec
    assert spec["dns_domain_name"] == "lago.local"
    assert vms["vm01"].mgmt_net.spec == spec
    assert net.gw() == spec["gw"]
    assert net.gw().rsplit(".", 1)[0] == vms["vm01"].ip().rsplit(".", 1)[0]


def test_ssh_as_lago(world, tmp_path):
    vm = world.env.get_vms()["vm01"]
    assert vm.ssh_reachable(tries=200)
    vm.wait_for_ssh()
    res = vm.ssh(["hostname"])
    assert res.code == 0 and isinstance(res.out, bytes)
    assert res.out.decode("utf-8").strip() == "vm01"
    script = tmp_path / "script.sh"
    script.write_text("echo from-script\nexit 4\n")
    res = vm.ssh_script(str(script), show_output=False)
    assert (res.code, res.out.decode().strip()) == (4, "from-script")


def test_second_init_raises_prefix_already_exists_then_load_env(world):
    with pytest.raises(PrefixAlreadyExists):
        sdk.init(str(world.config), workdir=str(world.workdir))
    logfile = world.folder / "load_env.log"
    loaded = sdk.load_env(str(world.workdir), logfile=str(logfile))
    assert loaded is not world.env
    assert len(loaded.get_vms()) == 2
    for vm in loaded.get_vms().values():
        assert vm.state() == "running"
        assert vm.ssh_reachable(tries=200)
    logging.root.info("after load_env")
    assert "after load_env" in logfile.read_text()


def test_ansible_inventory_with_ansible(world, tmp_path):
    cmd = "echo __abcd$(( 24 + 12 ))efgh__"
    expected = b"__abcd36efgh__"
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"), ANSIBLE_NOCOLOR="1")
    results = []
    with world.env.ansible_inventory_temp_file(keys=["groups"]) as inv:
        inventory = open(inv.name).read()
        for group in ["group0", "group1"]:
            res = run_command(
                ["ansible", "groups={0}".format(group), "-u", "root", "-i", inv.name,
                 "-m", "raw", "-a", cmd],
                env=dict(env, ANSIBLE_LOG_PATH=str(tmp_path / ("ansible-%s.log" % group))),
            )
            assert res.code == 0, res
            results.append(res)
    assert not os.path.exists(inv.name), "the temp file is gone after the block"
    assert sum(r.out.count(expected) for r in results) == 2
    with LagoAnsible(world.env).get_inventory_temp_file(keys=["groups"]) as inv:
        assert open(inv.name).read() == inventory


def test_collect_artifacts(world, tmp_path):
    vm = world.env.get_vms()["vm01"]
    content = "nothing-vm01"
    local = tmp_path / "test_file"
    local.write_text(content)
    assert vm.ssh(["mkdir", "-p", "/root/custom"]).code == 0
    vm.copy_to(str(local), "/root/custom/test_file", recursive=False)
    out = tmp_path / "collected"
    vm.collect_artifacts(str(out), ignore_nopath=True)
    assert (out / "_root_custom" / "test_file").read_text().strip() == content
    assert (out / "_etc_hosts").is_file()
    with pytest.raises(ExtractPathNoPathError) as err:
        vm.collect_artifacts(str(tmp_path / "collect-failure"), ignore_nopath=False)
    assert "/should/not/exist" in str(err.value)


def test_extract_paths(world, tmp_path):
    vm = world.env.get_vms()["vm02"]
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f1").write_text("1")
    (tree / "f2").write_text("2")
    dst = "/root/extract-vm02-normal"
    vm.copy_to(str(tree), dst, recursive=True)
    assert vm.ssh(["sync"]).code == 0
    out = tmp_path / "out"
    out.mkdir()
    vm.extract_paths([(dst, str(out))], ignore_nopath=False)
    cmp = filecmp.dircmp(str(out / os.path.basename(dst)), str(tree))
    assert sorted(cmp.left_list) == sorted(cmp.right_list) == ["a", "f2"]
    for bad in ["/nothing/here", "/root/nowhere"]:
        with pytest.raises(ExtractPathNoPathError):
            vm.extract_paths([(bad, str(out))], ignore_nopath=False)
        vm.extract_paths([(bad, str(out))], ignore_nopath=True)
        assert not (out / os.path.basename(bad)).exists()


def test_two_envs_in_one_process(world, tmp_path):
    """pytest fixtures often hold two environments: each one's SSH and
    vm-service plugins reach its own VMs with its own key."""
    config = initfile(tmp_path, ONE_VM)
    other = sdk.init(str(config), workdir=str(tmp_path / "wd"))
    try:
        other.start()
        fake = str(ROOT / "tests/e2e/fixtures/fake-systemctl")
        first = world.env.get_vms()["vm01"]
        second = other.get_vms()["solo"]
        for vm in (first, second):
            vm.copy_to(fake, "/usr/bin/systemctl", recursive=False)
        svc_first = first.service("fakesvc")
        svc_second = second.service("fakesvc")
        assert svc_first.provider == svc_second.provider == "systemd"
        svc_second.start()
        assert svc_second.alive() and not svc_first.alive()
        svc_first.start()
        svc_second.stop()
        assert svc_first.alive() and not svc_second.alive()
        svc_first.stop()
        assert first.ssh(["hostname"]).out.decode().strip() == "vm01"
        assert second.ssh(["hostname"]).out.decode().strip() == "solo"
    finally:
        other.destroy()
    # The first environment still reaches its VMs.
    assert not world.env.get_vms()["vm01"].service("fakesvc").alive()


def test_snapshot_revert_export(world, tmp_path):
    env = world.env
    vm = env.get_vms()["vm02"]
    env.snapshot("snap1", ["vm02"])
    assert "snap1" in env.list_snapshots(["vm02"])["vm02"]
    assert "snap1" in env.get_snapshots()["vm02"]
    assert vm.ssh(["touch", "/root/after-snapshot"]).code == 0
    assert vm.ssh(["sync"]).code == 0
    env.revert("snap1", ["vm02"])
    assert vm.ssh(["test", "-e", "/root/after-snapshot"]).code == 1
    # Export wants the VM down.
    env.stop(["vm02"])
    exported = env.export_vms(vms_names=["vm02"], export_dir=str(tmp_path), collect_only=True)
    assert "vm02" in str(exported)
    assert not any(tmp_path.iterdir()), "collect_only writes nothing"


def test_prefix_module(world):
    prefix = os.path.realpath(world.env.prefix)
    if os.path.lexists(os.path.join(str(world.workdir), "current")):
        assert lago_prefix.Prefix.resolve_prefix_path(str(world.workdir)) == prefix
    assert lago_prefix.Prefix.resolve_prefix_path(os.path.join(prefix, "logs")) == prefix
    assert lago_prefix.Prefix.is_prefix(world.env.prefix)
