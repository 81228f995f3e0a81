//! Networks that span hosts: the hosts' bridges of one net joined by kernel
//! VXLAN devices (`ip link ... type vxlan`), one per net and host, with a
//! flood entry (`bridge fdb append 00:00:00:00:00:00 ... dst PEER`) per
//! other host. Set up with `ip`/`bridge` on each host: here directly, on
//! another host over OpenSSH with the user's own configuration and keys
//! (the access `qemu+ssh` uses). No tunnel of lago's own.
//!
//! Every command is an argument vector; over SSH each argument is quoted
//! for the remote shell, and all of them are lago's own values (device
//! names, numbers, addresses), never text from the init file or a guest.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};
use std::process::Command;

use lago_plugin_api::spec::{HostSpec, NetSpec, SshDest};

use crate::error::{ProviderError, Result};

/// The UDP port of the tunnels (IANA's VXLAN port).
pub const VXLAN_PORT: u16 = 4789;

/// Where a host's commands run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostShell {
    /// The machine lago runs on.
    Local,
    /// Another machine, through `ssh`.
    Ssh(SshDest),
}

/// The argument vectors as `&str`s.
fn borrowed(v: &[Vec<String>]) -> Vec<Vec<&str>> {
    v.iter()
        .map(|s| s.iter().map(String::as_str).collect())
        .collect()
}

/// POSIX single quotes around `s`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl HostShell {
    /// The shell of a host: local when its libvirt URL names no host.
    pub fn of(host: &HostSpec) -> Result<HostShell> {
        if host.url_host().is_none() && host.ssh.is_none() {
            return Ok(HostShell::Local);
        }
        host.ssh_dest().map(HostShell::Ssh).ok_or_else(|| {
            ProviderError::Spec(format!(
                "host {}: no SSH destination in its libvirt URL or `ssh:`",
                host.libvirt_url
            ))
        })
    }

    /// The shell of the default host (libvirt URL `url`).
    pub fn of_url(url: &str) -> Result<HostShell> {
        HostShell::of(&HostSpec {
            libvirt_url: url.to_string(),
            ssh: None,
            address: None,
            extra: Default::default(),
        })
    }

    fn command(&self, argv: &[&str]) -> Command {
        match self {
            HostShell::Local => {
                let mut c = Command::new(argv[0]);
                c.args(&argv[1..]);
                c
            }
            HostShell::Ssh(dest) => Self::ssh(dest, &Self::quoted(argv)),
        }
    }

    /// `ssh DEST REMOTE_COMMAND`: never a prompt; keys, agent and known
    /// hosts as the user set them up for qemu+ssh.
    fn ssh(dest: &SshDest, remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"])
            .args(dest.ssh_args())
            .arg(remote);
        c
    }

    fn quoted(argv: &[&str]) -> String {
        argv.iter()
            .map(|a| sh_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs each of `tolerant` (failures ignored), then each of `steps`
    /// while they succeed, on the host: over SSH as one remote command, so
    /// one connection per call.
    pub fn run_steps(&self, tolerant: &[Vec<String>], steps: &[Vec<String>]) -> Result<()> {
        let (tolerant, steps) = (borrowed(tolerant), borrowed(steps));
        match self {
            HostShell::Local => {
                for t in &tolerant {
                    let _ = self.run(t);
                }
                for s in &steps {
                    self.run(s)?;
                }
                Ok(())
            }
            HostShell::Ssh(dest) => {
                let mut remote = String::new();
                for t in &tolerant {
                    remote.push_str(&Self::quoted(t));
                    remote.push_str(" >/dev/null 2>&1; ");
                }
                let strict: Vec<String> = steps.iter().map(|s| Self::quoted(s)).collect();
                // With no strict step, the call succeeds (not the last
                // tolerant command's status).
                remote.push_str(if strict.is_empty() { "true" } else { "" });
                remote.push_str(&strict.join(" && "));
                let what = format!("running ip, bridge and iptables on {dest}");
                crate::tools::run(&mut Self::ssh(dest, &remote), &what).map(|_| ())
            }
        }
    }

    /// Runs `argv` on the host; its stdout on success, else an error with
    /// its stderr.
    pub fn run(&self, argv: &[&str]) -> Result<String> {
        let out = crate::tools::run(&mut self.command(argv), &self.describe(argv))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn describe(&self, argv: &[&str]) -> String {
        match self {
            HostShell::Local => format!("running {} here", argv[0]),
            HostShell::Ssh(d) => format!("running {} on {d}", argv[0]),
        }
    }
}

/// The VXLAN device of a net on every host: its bridge name with `vx` for
/// `lg` (15 characters at most, unique per prefix and net).
pub fn vxlan_device(net: &NetSpec) -> String {
    match net.bridge.strip_prefix("lg") {
        Some(rest) => format!("vx{rest}"),
        None => {
            let mut s = format!("vx{}", net.bridge);
            s.truncate(15);
            s
        }
    }
}

/// The IPv4 address of a host as its peers reach it: `address:`, else its
/// libvirt URL's host name resolved.
pub fn host_address(name: &str, host: &HostSpec) -> Result<Ipv4Addr> {
    if let Some(a) = host.address {
        return Ok(a);
    }
    let h = host.url_host().ok_or_else(|| {
        ProviderError::Spec(format!("host {name}: its libvirt URL names no host"))
    })?;
    let addrs = (h, VXLAN_PORT).to_socket_addrs().map_err(|e| {
        ProviderError::Spec(format!(
            "host {name}: cannot resolve {h}: {e} (set its `address:`)"
        ))
    })?;
    addrs
        .filter_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| {
            ProviderError::Spec(format!(
                "host {name}: {h} has no IPv4 address (set its `address:`)"
            ))
        })
}

/// The address of this machine towards `peer`: the source address the
/// kernel picks for it (a UDP socket's connect sends nothing).
pub fn local_address_towards(peer: Ipv4Addr) -> Result<Ipv4Addr> {
    let sock = UdpSocket::bind(("0.0.0.0", 0))
        .and_then(|s| s.connect((peer, VXLAN_PORT)).map(|()| s))
        .map_err(|e| ProviderError::Spec(format!("no route from this machine to {peer}: {e}")))?;
    match sock.local_addr().map(|a| a.ip()) {
        Ok(IpAddr::V4(a)) => Ok(a),
        other => Err(ProviderError::Spec(format!(
            "no IPv4 source address towards {peer}: {other:?}"
        ))),
    }
}

/// The firewall rules that keep guests away from the tunnels: VXLAN
/// between hosts is the hosts' own traffic (INPUT/OUTPUT), so a datagram to
/// UDP 4789 that comes from a lago bridge (`lg+`), to this host or routed
/// (NAT) to another, is a guest forging frames into some net: dropped.
/// Tagged with the device, so each environment removes its own.
fn guard_rules(dev: &str) -> Vec<Vec<String>> {
    let port = VXLAN_PORT.to_string();
    let tag = format!("lago:{dev}");
    ["INPUT", "FORWARD"]
        .iter()
        .map(|chain| {
            [
                chain,
                "-i",
                "lg+",
                "-p",
                "udp",
                "--dport",
                &port,
                "-m",
                "comment",
                "--comment",
                &tag,
                "-j",
                "DROP",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
        .collect()
}

fn iptables(op: &str, rule: &[String]) -> Vec<String> {
    let mut v = vec!["iptables".to_string(), "-w".to_string(), op.to_string()];
    v.extend(rule.iter().cloned());
    v
}

/// (Re)creates the net's VXLAN device on the host behind `shell`, bound to
/// the host's address `local`, attached to the net's bridge, flooding to
/// `peers`, with [`guard_rules`] in place first.
pub fn attach(
    shell: &HostShell,
    net: &NetSpec,
    vni: u32,
    local: Ipv4Addr,
    peers: &[Ipv4Addr],
) -> Result<()> {
    let dev = vxlan_device(net);
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let (vni, port, local) = (vni.to_string(), VXLAN_PORT.to_string(), local.to_string());
    let rules = guard_rules(&dev);
    // A device of this name is lago's (named after the prefix): an older
    // one, from a start that was cut short, is replaced, and so are its
    // rules.
    let mut tolerant = vec![argv(&["ip", "link", "del", &dev])];
    tolerant.extend(rules.iter().map(|r| iptables("-D", r)));
    let mut steps: Vec<Vec<String>> = rules.iter().map(|r| iptables("-I", r)).collect();
    steps.push(argv(&[
        "ip", "link", "add", &dev, "type", "vxlan", "id", &vni, "dstport", &port, "local", &local,
    ]));
    for p in peers {
        let p = p.to_string();
        steps.push(argv(&[
            "bridge",
            "fdb",
            "append",
            "00:00:00:00:00:00",
            "dev",
            &dev,
            "dst",
            &p,
        ]));
    }
    if let Some(mtu) = net.mtu {
        steps.push(argv(&["ip", "link", "set", &dev, "mtu", &mtu.to_string()]));
    }
    steps.push(argv(&["ip", "link", "set", &dev, "master", &net.bridge]));
    steps.push(argv(&["ip", "link", "set", &dev, "up"]));
    let result = shell.run_steps(&tolerant, &steps);
    if result.is_err() {
        let _ = shell.run_steps(&tolerant, &[]);
    }
    result
}

/// Removes the net's VXLAN device and its [`guard_rules`] from the host
/// behind `shell`; missing ones are fine.
pub fn detach(shell: &HostShell, net: &NetSpec) -> Result<()> {
    let dev = vxlan_device(net);
    let mut tolerant: Vec<Vec<String>> = guard_rules(&dev)
        .iter()
        .map(|r| iptables("-D", r))
        .collect();
    tolerant.push(vec!["ip".into(), "link".into(), "del".into(), dev]);
    shell.run_steps(&tolerant, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_commands() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        let dest = SshDest::parse("root@hv2:2222").expect("dest");
        let c = HostShell::Ssh(dest).command(&["ip", "link", "del", "vx1; rm -rf /"]);
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=15",
                "-p",
                "2222",
                "--",
                "root@hv2",
                "'ip' 'link' 'del' 'vx1; rm -rf /'"
            ]
        );
    }

    #[test]
    fn device_names() {
        let mut net: NetSpec = serde_json::from_value(serde_json::json!({
            "name": "lago", "type": "nat", "libvirt_name": "x-lago", "bridge": "lgabcdef12-0"
        }))
        .expect("net");
        assert_eq!(vxlan_device(&net), "vxabcdef12-0");
        net.bridge = "virbr-some-long".into();
        assert!(vxlan_device(&net).len() <= 15);
    }

    #[test]
    fn shells() {
        assert_eq!(
            HostShell::of_url("qemu:///system").expect("local"),
            HostShell::Local
        );
        assert!(matches!(
            HostShell::of_url("qemu+ssh://root@hv2/system").expect("ssh"),
            HostShell::Ssh(_)
        ));
        assert_eq!(
            local_address_towards(Ipv4Addr::LOCALHOST).expect("lo"),
            Ipv4Addr::LOCALHOST
        );
    }
}
