"""lago.sdk against real VMs: a 2-VM environment from init to destroy, with
SSH, copies, a service, the CLI's inventory and status, load_env from a
second process and the documented exceptions."""

import json
import os
import stat
import subprocess
import sys

import pytest

import lago
from lago import sdk

from conftest import TWO_VMS, initfile, lago_cli, leftover_libvirt, ROOT


def test_bad_input_raises_the_documented_exceptions(lago_env):
    bad = lago_env / "Bad"
    bad.write_text("domains: [not, a, mapping]\n")
    with pytest.raises(lago.LagoBadInputError) as err:
        sdk.init(str(bad), workdir=str(lago_env / "wd"))
    assert "\n" not in str(err.value) and str(err.value)
    assert not (lago_env / "wd").exists(), "a refused init leaves nothing"
    with pytest.raises(lago.LagoNotFoundError):
        sdk.load_env(str(lago_env / "nowhere"))
    # The same one-line message as the CLI's.
    cli = lago_cli("init", str(lago_env / "wd"), str(bad), cwd=lago_env)
    assert cli.returncode == 2
    assert cli.stderr.strip().endswith(str(err.value))


def test_two_vms_lifecycle(lago_env, tmp_path):
    config = initfile(lago_env, TWO_VMS)
    workdir = lago_env / ".lago"
    env = sdk.init(str(config), workdir=str(workdir))
    try:
        env.start()
        vms = env.get_vms()
        assert sorted(vms) == ["vm01", "vm02"]
        # warm starts are the default: the first start after init restores
        # each VM from its template's warm image (made by this start)
        for name, info in env.status()["Prefix"]["VMs"].items():
            assert info["last start"] == "warm", (name, info)
        for name, vm in vms.items():
            res = vm.ssh(["hostname"])
            assert isinstance(res, lago.CommandStatus)
            assert (res.code, res.out.decode().strip(), res.err) == (0, name, b"")
            assert vm.running() and vm.state() == "running"
        with pytest.raises(KeyError):
            vms["nope"]
        with pytest.raises(lago.LagoNotFoundError):
            env.get_vm("nope")

        vm = vms["vm01"]
        res = vm.ssh(["sh", "-c", "echo oops >&2; exit 7"])
        assert (res.code, res.err.strip()) == (7, b"oops")
        assert res and res.err_text.strip() == "oops", "Lago's truth value: failed"
        assert vm.ssh(["cat"], data="via stdin").out == b"via stdin"
        assert vm.ip() in vm.all_ips()
        assert env.get_net().is_management()
        assert env.get_net().resolve("vm02") == vms["vm02"].ip()
        assert vm.groups == ["web"]

        # A copy round trip keeps content and mode.
        src = tmp_path / "payload.txt"
        src.write_text("round trip\n")
        os.chmod(src, 0o640)
        vm.copy_to(str(src), "/tmp/payload.txt")
        back = tmp_path / "back.txt"
        vm.copy_from("/tmp/payload.txt", str(back))
        assert back.read_text() == "round trip\n"
        assert stat.S_IMODE(back.stat().st_mode) == 0o640

        # A service through the vm-service plugins (a stand-in systemctl).
        fake = ROOT / "tests/e2e/fixtures/fake-systemctl"
        vm.copy_to(str(fake), "/usr/bin/systemctl")
        svc = vm.service("fakesvc")
        assert svc.provider == "systemd"
        assert svc.exists() and not svc.alive() and svc.state() == "INACTIVE"
        svc.start()
        assert svc.alive()
        assert not vm.service("nosuch").exists()

        # The inventory and the status are the CLI's.
        cli = lago_cli("ansible_hosts", cwd=lago_env)
        assert cli.returncode == 0, cli.stderr
        assert env.ansible_inventory().strip() == cli.stdout.strip()
        cli = lago_cli("--out-format", "json", "status", cwd=lago_env)
        assert cli.returncode == 0, cli.stderr
        assert env.status() == json.loads(cli.stdout)

        # Another process finds the environment this one started.
        script = (
            "from lago import sdk; import sys\n"
            "env = sdk.load_env(sys.argv[1])\n"
            "print(env.get_vms()['vm02'].ssh(['hostname']).out.decode().strip())\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", script, str(workdir)], capture_output=True, text=True
        )
        assert (other.returncode, other.stdout.strip()) == (0, "vm02"), other.stderr

        # A stopped VM is not reachable, and says why.
        env.stop(["vm01"])
        with pytest.raises(lago.LagoVMNotRunningError) as err:
            vm.ssh(["true"])
        assert "vm01" in str(err.value)
    finally:
        tag = env.status()["Prefix"]["UUID"][:8]
        env.destroy()
    # destroy leaves nothing: no domain, network, lease or folder.
    assert leftover_libvirt(tag) == []
    assert [p for p in (lago_env / "subnets").glob("*") if not p.name.startswith(".")
            and not p.name.endswith(".lock")] == []
    assert not workdir.exists()
    with pytest.raises(lago.LagoBadInputError):
        env.start()
