#!/usr/bin/env python3
"""Warm-start spike (issue 22, design A), run inside a VM sandbox:

  scripts/sandbox/run.sh lago-warm python3 tests/sandbox/warm-spike.py -r REPO -n 3

1. bake: boots the template once (no seed, identity channel org.lago.id.0,
   <genid/>), sends "park", waits for "parked", `virsh save`s it; its overlay
   becomes the frozen (golden) overlay.
2. per clone, in parallel: copy of the golden overlay, a copy of the save
   image whose embedded domain XML is rewritten (name, UUID, MAC, disk and
   console paths; same header layout), `virsh restore`, the identity over the
   channel (time, random, machine-id, MAC, NoCloud meta/user-data), then SSH
   with the pinned host key until `hostname` answers.
Prints the times of each step. Removes everything it made at the end.
"""
import argparse
import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib

HEADER = struct.Struct("=16sIIIII56x")  # libvirt 9.0 virQEMUSaveHeader, 92 bytes
MAGIC = b"LibvirtQemudSave"


def sh(*argv, check=True, capture=True):
    r = subprocess.run(argv, capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{argv}: {r.stderr.strip()}")
    return r.stdout


def read_header(path):
    with open(path, "rb") as f:
        raw = f.read(HEADER.size)
        magic, version, data_len, was_running, compressed, cookie_off = HEADER.unpack(raw)
        assert magic == MAGIC, magic
        data = f.read(data_len)
    xml = data[:cookie_off].split(b"\0", 1)[0].decode()
    cookie = data[cookie_off:].split(b"\0", 1)[0].decode() if cookie_off else ""
    return dict(version=version, data_len=data_len, was_running=was_running,
                compressed=compressed, cookie_off=cookie_off, xml=xml, cookie=cookie)


def write_clone(src, dst, hdr, xml):
    xb = xml.encode() + b"\0"
    cb = hdr["cookie"].encode() + b"\0" if hdr["cookie_off"] else b""
    body = xb + cb
    if len(body) > hdr["data_len"]:
        raise RuntimeError("rewritten XML does not fit the save image's XML area")
    body += b"\0" * (hdr["data_len"] - len(body))
    head = HEADER.pack(MAGIC, hdr["version"], hdr["data_len"], hdr["was_running"],
                       hdr["compressed"], len(xb) if cb else 0)
    off = HEADER.size + hdr["data_len"]
    with open(src, "rb") as s, open(dst, "wb") as d:
        d.write(head)
        d.write(body)
        size = os.fstat(s.fileno()).st_size
        n, pos = size - off, off
        while n > 0:
            done = os.copy_file_range(s.fileno(), d.fileno(), n, pos)
            if done == 0:
                break
            pos += done
            n -= done


def channel_path(dom):
    xml = sh("virsh", "dumpxml", dom)
    m = re.search(r"<channel type='unix'>\s*<source mode='bind' path='([^']+)'/>\s*<target type='virtio' name='org.lago.id.0'", xml)
    assert m, xml
    return m.group(1)


def talk(dom, lines, want, timeout):
    path = channel_path(dom)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(timeout)
    s.sendall("".join(l + "\n" for l in lines).encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    got = buf.decode().strip()
    if got != want:
        raise RuntimeError(f"{dom}: channel answered {got!r}, wanted {want!r}")


def domain_xml(name, disk, console, mac, net, channel):
    chan = ("<channel type='unix'><source mode='bind'/>"
            "<target type='virtio' name='org.lago.id.0'/></channel>") if channel else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <genid/>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <clock offset='utc'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='unsafe'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <interface type='network'>
      <source network='{net}'/>
      <mac address='{mac}'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    {chan}
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
  </devices>
</domain>"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", "--repo", default=os.environ.get("LAGO_EMBEDDED_REPO", "/var/lib/lago/repos/embedded"))
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("-S", "--subnet", default="192.168.231")
    ap.add_argument("-k", "--keep", action="store_true")
    a = ap.parse_args()
    template = os.path.join(a.repo, "lago-tiny-v1.qcow2")
    work = tempfile.mkdtemp(prefix="lago-warm-spike.", dir="/var/tmp")
    net = "lago-wspike"
    doms = []
    t = {}
    try:
        hosts = "".join(f"<host mac='52:54:00:e7:00:{i:02x}' name='wclone{i}' ip='{a.subnet}.{10 + i}'/>"
                        for i in range(1, a.n + 1))
        open(f"{work}/net.xml", "w").write(f"""<network><name>{net}</name><forward mode='nat'/>
<bridge name='lagowspk0' stp='off' delay='0'/><domain name='wspike'/>
<ip address='{a.subnet}.1' netmask='255.255.255.0'><dhcp><range start='{a.subnet}.100' end='{a.subnet}.254'/>{hosts}</dhcp></ip></network>""")
        sh("virsh", "net-create", f"{work}/net.xml")
        # ---- 1. bake
        t0 = time.time()
        golden = f"{work}/golden.qcow2"
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", template, golden)
        open(f"{work}/bake.xml", "w").write(domain_xml("wbake", golden, f"{work}/bake.log",
                                                        "52:54:00:e7:ff:ff", net, True))
        sh("virsh", "create", f"{work}/bake.xml")
        doms.append("wbake")
        talk("wbake", ["park"], "parked", 180)
        t["bake boot+park"] = time.time() - t0
        t1 = time.time()
        sav = f"{work}/bake.sav"
        sh("virsh", "save", "wbake", sav)
        doms.remove("wbake")
        os.chmod(golden, 0o444)
        t["bake save"] = time.time() - t1
        hdr = read_header(sav)
        print(f"save image {os.path.getsize(sav) / 2**20:.1f} MiB, header {hdr['version']=} {hdr['data_len']=} "
              f"{hdr['cookie_off']=} xml {len(hdr['xml'])} B; golden overlay {os.path.getsize(golden) / 2**20:.2f} MiB")
        base_xml = hdr["xml"]
        # ---- 2. clones
        sshkey = f"{work}/id"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", sshkey)
        kh = open(f"{work}/known_hosts", "w")
        for i in range(1, a.n + 1):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@wclone{i}", "-f", f"{work}/hk{i}")
            kh.write(f"{a.subnet}.{10 + i} " + " ".join(open(f"{work}/hk{i}.pub").read().split()[:2]) + "\n")
        kh.close()
        results = {}

        def clone(i):
            r = {}
            c0 = time.time()
            name = f"wclone{i}"
            disk = f"{work}/c{i}.qcow2"
            shutil.copyfile(golden, disk)
            xml = base_xml
            xml = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", xml, count=1)
            xml = re.sub(r"<uuid>[^<]*</uuid>", f"<uuid>{uuidlib.uuid4()}</uuid>", xml, count=1)
            xml = xml.replace("52:54:00:e7:ff:ff", f"52:54:00:e7:00:{i:02x}")
            xml = xml.replace(golden, disk).replace(f"{work}/bake.log", f"{work}/c{i}.log")
            xml = re.sub(r"(<channel type='unix'>\s*<source mode='bind') path='[^']*'", r"\1", xml)
            csav = f"{work}/c{i}.sav"
            write_clone(sav, csav, hdr, xml)
            r["prepare"] = time.time() - c0
            sh("virsh", "restore", csav)
            doms.append(name)
            os.unlink(csav)
            r["restore"] = time.time() - c0
            meta = f"instance-id: {name}\nlocal-hostname: {name}\n"
            user = ("#cloud-config\nssh_authorized_keys:\n  - " + open(sshkey + ".pub").read().strip() +
                    "\nssh_keys:\n  ed25519_private: |\n" +
                    "".join("    " + l for l in open(f"{work}/hk{i}").readlines()) +
                    "  ed25519_public: " + open(f"{work}/hk{i}.pub").read().strip() + "\n")
            b64 = lambda s: base64.b64encode(s.encode()).decode()
            talk(name, ["identity", f"time {int(time.time())}",
                        "random " + base64.b64encode(os.urandom(64)).decode(),
                        f"machine-id {uuidlib.uuid4().hex}", f"mac 52:54:00:e7:00:{i:02x}",
                        "meta-data " + b64(meta), "user-data " + b64(user), "end"], "ok", 60)
            r["identity"] = time.time() - c0
            ip = f"{a.subnet}.{10 + i}"
            opts = ["-i", sshkey, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                    "-o", f"UserKnownHostsFile={work}/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
                    "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR"]
            deadline = time.time() + 60
            while time.time() < deadline:
                p = subprocess.run(["ssh", *opts, f"root@{ip}", "hostname; date +%s; cat /etc/machine-id; "
                                    "cat /sys/class/net/eth0/address"], capture_output=True, text=True)
                if p.returncode == 0:
                    r["ssh"] = time.time() - c0
                    r["out"] = p.stdout.split()
                    r["clock skew"] = int(r["out"][1]) - time.time()
                    break
                time.sleep(0.05)
            results[i] = r

        c0 = time.time()
        threads = [threading.Thread(target=clone, args=(i,)) for i in range(1, a.n + 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t["all clones answer ssh"] = time.time() - c0
        for k, v in t.items():
            print(f"{k}: {v:.2f} s")
        for i, r in sorted(results.items()):
            print(f"clone {i}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in r.items()))
        ok = all("ssh" in r and r["out"][0] == f"wclone{i}" for i, r in results.items())
        print("RESULT", "ok" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        if a.keep:
            print("kept", work)
        else:
            for d in doms:
                subprocess.run(["virsh", "destroy", d], capture_output=True)
            subprocess.run(["virsh", "net-destroy", net], capture_output=True)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
