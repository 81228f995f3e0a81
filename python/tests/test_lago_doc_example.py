"""The example of Lago's SDK documentation ("Prepare the environment",
"Starting the environment", "Controlling the environment"). Its Python is
Lago's own, import line included; its init file differs in the template name
(the embedded template instead of el7.3-base) and in the root disk's `dev`:
`vda` instead of `sda`, because the embedded template's initramfs has no
SCSI drivers (a `sd*` disk is on a virtio-scsi controller, and the guest
does not find its root file system)."""

import os

from conftest import TEMPLATE


LAGO_DOC_INITFILE = """\
domains:
  vm01:
    memory: 1024
    nics:
      - net: lago
    disks:
      - template_name: el7.3-base
        type: template
        name: root
        dev: sda
        format: qcow2
nets:
  lago:
    type: nat
    dhcp:
      start: 100
      end: 254
"""


def test_lago_sdk_documentation_example(lago_env):
    config = lago_env / "el7-init.yaml"
    config.write_text(
        LAGO_DOC_INITFILE.replace("el7.3-base", TEMPLATE).replace("dev: sda", "dev: vda")
    )
    workdir = lago_env / "my_test_env"
    logfile = lago_env / "lago.log"

    # ---- Lago's example, as its documentation gives it.
    import logging
    from lago import sdk

    env = sdk.init(config=str(config),
                   workdir=str(workdir),
                   logfile=str(logfile),
                   loglevel=logging.DEBUG)
    try:
        env.start()
        vm = env.get_vms()['vm01']
        res = vm.ssh(['hostname', '-f'])
    finally:
        env.destroy()
    # ---- end of the example.

    assert res.code == 0, res
    assert res.out.decode().split(".")[0].strip() == "vm01", res
    assert res.err == b""
    assert not workdir.exists()
    assert os.path.getsize(logfile) > 0, "the logfile gets lago's records"
