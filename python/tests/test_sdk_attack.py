"""What a fresh user found attacking the wheel from the docs (issue 19's
second round): each test fails on the package as it was, on real VMs where
the finding needs them."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import types
import time

import pytest

from conftest import initfile, lago_init, started

#: One VM (vm01) whose artifacts include a path missing in it.
ONE_VM = lago_init(1)


def wait_for_line(path, needle, proc):
    """Waits until `needle` is in the file at `path` (or `proc` ended)."""
    while proc.poll() is None:
        if path.exists() and needle in path.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def test_ctrl_c_during_start_raises_keyboard_interrupt(lago_env):
    """SIGINT while env.start() waits for the VM's SSH: start() raises
    KeyboardInterrupt when it returns (it is not eaten by a log record the
    call emits), the script's cleanup runs, and the process fails."""
    config = initfile(lago_env, ONE_VM)
    log = lago_env / "child.log"
    script = lago_env / "child.py"
    script.write_text(textwrap.dedent("""
        import logging, sys
        from lago import sdk
        env = sdk.init(sys.argv[1], workdir=sys.argv[2], logfile=sys.argv[3],
                       loglevel=logging.DEBUG)
        try:
            env.start()
            print("start returned normally", flush=True)
        finally:
            env.destroy()
            print("destroyed", flush=True)
    """))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(config), str(lago_env / "wd"), str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A run in the background of a non-interactive shell (a CI job)
        # inherits SIGINT ignored, and Python then leaves it ignored: the
        # child gets the default disposition, as a terminal's Ctrl-C finds.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # The VM is defined and booting: start() now waits for its SSH.
        assert wait_for_line(log, "started in", proc), proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "start returned normally" not in out, (out, err)
    assert "destroyed" in out, (out, err)
    assert proc.returncode != 0, (out, err)
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err


def run_child(code, *args):
    """`code` run by this Python in a new process; returns it finished."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True, text=True,
    )


# ---- No VM needed.


def test_a_missing_template_repository_is_the_users_mistake(lago_env):
    import lago
    from lago import sdk

    config = initfile(lago_env, ONE_VM)
    missing = lago_env / "no" / "repo.json"
    with pytest.raises(lago.LagoUserException) as err:
        sdk.init(str(config), workdir=str(lago_env / "wd"), template_repo_path=str(missing))
    assert not isinstance(err.value, lago.LagoInternalError), repr(err.value)
    assert str(missing) in str(err.value)
    assert not (lago_env / "wd" / "default").exists()


def test_destroy_through_another_env_then_destroy_again(lago_env):
    """Two Envs of one prefix (init, load_env): B.destroy() then A.destroy()
    does nothing more (a `finally: env.destroy()` teardown), and A's calls
    say the prefix was destroyed."""
    from lago import LagoBadInputError, sdk

    config = initfile(lago_env, ONE_VM)
    workdir = lago_env / "wd"
    a = sdk.init(str(config), workdir=str(workdir))
    vm = a.get_vms()["vm01"]
    b = sdk.load_env(str(workdir))
    b.destroy()
    assert not (workdir / "default").exists()
    with pytest.raises(LagoBadInputError) as err:
        vm.ssh(["true"])
    text = str(err.value)
    assert "destroyed" in text and "lago start" not in text, text
    a.destroy()
    a.destroy()


def test_concurrent_init_loser_gets_prefix_already_exists(lago_env):
    """Two processes init one workdir at once: one wins, the other gets
    PrefixAlreadyExists (then load_env gives the winner's environment,
    waiting for its init when it still runs)."""
    config = initfile(lago_env, ONE_VM)
    workdir = lago_env / "wd"
    code = """
        import sys
        from lago import sdk
        from lago.workdir import PrefixAlreadyExists
        try:
            sdk.init(sys.argv[1], workdir=sys.argv[2])
            print("won")
        except PrefixAlreadyExists as e:
            env = sdk.load_env(sys.argv[2])
            print("lost", len(env.get_vms()))
    """
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(config), str(workdir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate() for p in procs]
    from lago import sdk

    try:
        results = sorted(out.strip() for out, _ in outs)
        assert results == ["lost 1", "won"], outs
    finally:
        sdk.load_env(str(workdir)).destroy()


# ---- One started VM for the rest.


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    import logging

    folder = tmp_path_factory.mktemp("attack")
    logfile = folder / "debug.log"
    with started(folder, ONE_VM, logfile=str(logfile), loglevel=logging.DEBUG) as (env, _):
        yield types.SimpleNamespace(env=env, workdir=folder / "workdir", logfile=logfile,
                                    vm=env.get_vms()["vm01"])


def test_env_collect_artifacts_missing_raises_extract_path_no_path(booted, tmp_path):
    from lago import LagoError
    from lago.plugins.vm import ExtractPathNoPathError

    out = tmp_path / "out"
    with pytest.raises(ExtractPathNoPathError) as err:
        booted.env.collect_artifacts(str(out), ignore_nopath=False)
    assert isinstance(err.value, LagoError)
    text = str(err.value)
    assert "/should/not/exist" in text and "--no-skip" not in text, text
    assert "ignore_nopath" in text
    # The others were collected around the missing one.
    assert (out / "vm01" / "_etc_hosts").is_file()
    booted.env.collect_artifacts(str(tmp_path / "out2"), ignore_nopath=True)
    assert (tmp_path / "out2" / "vm01" / "_etc_hosts").is_file()


def test_copy_errors_are_lagos_classes(booted, tmp_path):
    import lago
    from lago.plugins.vm import LagoCopyFilesFromVMError, LagoCopyFilesToVMError

    with pytest.raises(LagoCopyFilesFromVMError) as err:
        booted.vm.copy_from("/no/such/guest/file", str(tmp_path / "x"))
    assert isinstance(err.value, lago.LagoNotFoundError)
    assert "/no/such/guest/file" in str(err.value)
    with pytest.raises(LagoCopyFilesToVMError) as err:
        booted.vm.copy_to(str(tmp_path / "no-such-local"), "/root/x")
    assert isinstance(err.value, lago.LagoBadInputError)
    assert "no-such-local" in str(err.value)


def test_ssh_with_a_string_says_to_pass_a_list(booted):
    with pytest.raises(TypeError, match="list of arguments"):
        booted.vm.ssh("echo hi")
    assert booted.vm.ssh(["echo", "hi"]).out == b"hi\n"


def test_inventory_key_path_with_spaces(booted, tmp_path):
    """Ansible reads the key's path whole when the workdir has spaces."""
    import json

    from conftest import lago_config
    from lago import sdk

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CONFIG_HOME", str(lago_config(tmp_path)))
        config = initfile(tmp_path, ONE_VM)
        workdir = tmp_path / "wd 2 \u00fcn\u00ef"
        env = sdk.init(str(config), workdir=str(workdir))
        try:
            with env.ansible_inventory_temp_file() as inv:
                out = subprocess.run(["ansible-inventory", "-i", inv.name, "--list"],
                                     capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            hostvars = json.loads(out.stdout)["_meta"]["hostvars"]["vm01"]
            key = hostvars["ansible_ssh_private_key_file"]
            assert " " in key and os.path.isfile(key), hostvars
        finally:
            env.destroy()


def test_debug_log_without_transport_noise_and_with_callers(booted):
    assert booted.vm.ssh(["true"]).code == 0
    text = booted.logfile.read_text()
    lines = text.splitlines()
    assert any("::lago::DEBUG::" in line for line in lines)
    assert not [l for l in lines if "russh" in l and "::DEBUG::" in l][:3]
    assert "__init__.py::log::" not in text
    assert "log.file=" not in text


def test_exit_with_open_sessions_is_quiet(booted):
    """A process that load_envs, talks to the VM and exits without
    destroying prints nothing at interpreter exit."""
    code = """
        import sys
        from lago import sdk
        env = sdk.load_env(sys.argv[1])
        assert env.get_vms()["vm01"].ssh(["true"]).code == 0
        print("done")
    """
    out = run_child(code, booted.workdir)
    assert out.returncode == 0 and out.stdout.strip() == "done", out
    assert out.stderr == "", out.stderr


def test_stopped_vm(booted, tmp_path):
    """A stopped VM: ssh says how to start it in SDK words; export_vms takes
    Lago's out_format; collecting reads the disks offline and a missing
    path is the provider's error."""
    from lago import LagoBadInputError, LagoProviderError, LagoVMNotRunningError

    env = booted.env
    env.stop(["vm01"])
    with pytest.raises(LagoVMNotRunningError) as err:
        booted.vm.ssh(["true"])
    text = str(err.value)
    assert "env.start()" in text and "lago start" not in text, text
    assert env.export is env.export_vms or env.export == env.export_vms
    exported = env.export_vms(vms_names=["vm01"], export_dir=str(tmp_path), collect_only=True,
                              out_format="yaml")
    assert "vm01" in str(exported)
    with pytest.raises(LagoBadInputError, match="out_format"):
        env.export_vms(vms_names=["vm01"], export_dir=str(tmp_path), collect_only=True,
                       out_format="json")
    with pytest.raises(LagoProviderError):
        booted.vm.collect_artifacts(str(tmp_path / "dead"), ignore_nopath=False)
