//! One environment's provider session: networks, domains, disks, seeds.
//!
//! A [`LibvirtSession`] is `Send + Sync`: the host calls `start(vm)` for
//! several VMs from several threads at once. It keeps one libvirt
//! connection, opened on first use and reopened when it dies; libvirt
//! connections are thread safe and the remote driver multiplexes concurrent
//! calls on one connection, so a shared connection saves the socket, auth
//! and hello round-trips a connection per call would pay each time.
//!
//! Domains and networks are transient, as in Lago: a stopped VM disappears
//! from libvirt and its state is `down`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use lago_plugin_api::spec::{EnvSpec, NetSpec, VmSpec};
use lago_plugin_api::tracing;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use virt::network::Network;

use crate::domain::{
    domain_xml, model_vendor, nested_feature, parse_capabilities, seed_path, DomainXmlOptions,
    HostCpu,
};
use crate::error::{ProviderError, Result};
use crate::net::{network_xml, NetXmlOptions};
use crate::options::{resolve_domain_type, DomainType, ProviderOptions};
use crate::tools::{run, which};

static QUIET_LIBVIRT: Once = Once::new();

/// What [`LibvirtSession::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub domains: Vec<String>,
    pub networks: Vec<String>,
}

/// Lago's name for a libvirt domain state.
pub fn state_name(state: DomainState) -> &'static str {
    match state {
        DomainState::NoState => "no state",
        DomainState::Running => "running",
        DomainState::Blocked => "blocked",
        DomainState::Paused => "paused",
        DomainState::Shutdown => "in shutdown",
        DomainState::Shutoff => "shut off",
        DomainState::Crashed => "crashed",
        DomainState::PMSuspended => "pmsuspended",
    }
}

fn is_code(e: &virt::error::Error, code: ErrorNumber) -> bool {
    e.code() == Enum::Known(code)
}

/// The provider session of one environment.
pub struct LibvirtSession {
    env: EnvSpec,
    opts: ProviderOptions,
    conn: Mutex<Option<Connect>>,
    host: OnceLock<Option<HostCpu>>,
    domain_type: OnceLock<DomainType>,
}

impl LibvirtSession {
    /// A session for `env`. Does not connect yet: the first call that needs
    /// libvirt does.
    pub fn new(env: EnvSpec, opts: ProviderOptions) -> Self {
        // libvirt's default error handler prints every error (even an
        // expected "no domain with that name") to stderr.
        QUIET_LIBVIRT.call_once(virt::error::clear_error_callback);
        LibvirtSession {
            env,
            opts,
            conn: Mutex::new(None),
            host: OnceLock::new(),
            domain_type: OnceLock::new(),
        }
    }

    pub fn env(&self) -> &EnvSpec {
        &self.env
    }

    pub fn options(&self) -> &ProviderOptions {
        &self.opts
    }

    /// The shared connection, (re)opened when needed.
    pub fn connection(&self) -> Result<Connect> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = guard.as_ref() {
            if c.is_alive().unwrap_or(false) {
                return Ok(c.clone());
            }
        }
        let url = &self.opts.libvirt_url;
        let c = crate::auth::open(url, &self.opts.libvirt_auth)
            .map_err(|e| ProviderError::libvirt(format!("connecting to libvirt at {url}"), e))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    pub(crate) fn vm(&self, name: &str) -> Result<&VmSpec> {
        self.env.domains.get(name).ok_or_else(|| {
            ProviderError::NotFound(format!("no VM named '{name}' in this environment"))
        })
    }

    fn net(&self, name: &str) -> Result<&NetSpec> {
        self.env.nets.get(name).ok_or_else(|| {
            ProviderError::NotFound(format!("no network named '{name}' in this environment"))
        })
    }

    /// The host CPU from libvirt's capabilities (None when they cannot be read).
    fn host_cpu(&self) -> Option<&HostCpu> {
        self.host
            .get_or_init(|| {
                let conn = self.connection().ok()?;
                let caps = conn.capabilities().ok()?;
                parse_capabilities(&caps).ok()
            })
            .as_ref()
    }

    /// The domain type (`[lago] domain_type`, `auto` resolved once).
    pub fn domain_type(&self) -> DomainType {
        *self.domain_type.get_or_init(|| {
            let offered = match self.opts.domain_type {
                crate::options::DomainTypeSetting::Auto => self.host_cpu().map(|h| h.kvm_offered),
                _ => None,
            };
            resolve_domain_type(self.opts.domain_type, offered)
        })
    }

    /// The options [`domain_xml`] gets for `vm` in this session.
    pub fn domain_xml_options(&self, vm: &VmSpec) -> DomainXmlOptions {
        let domain_type = self.domain_type();
        let nested = match (&vm.cpu_model, domain_type) {
            (Some(model), DomainType::Kvm) => self.host_cpu().and_then(|h| {
                nested_feature(
                    h.vendor.as_deref(),
                    &h.features,
                    model_vendor(model).as_deref(),
                )
            }),
            _ => None,
        };
        let seed = seed_path(&self.env, vm);
        DomainXmlOptions {
            domain_type,
            nested_feature: nested,
            tcg_cpu: self.opts.tcg_cpu.clone(),
            seed: (vm.bootstrap && seed.exists()).then_some(seed),
            seed_bus: self.opts.seed_bus,
        }
    }

    /// The domain XML `start` would create for the VM named `vm`.
    pub fn domain_xml(&self, vm: &str) -> Result<String> {
        let spec = self.vm(vm)?;
        domain_xml(&self.env, spec, &self.domain_xml_options(spec))
    }

    /// The network XML `start_networks` would create for the net named `net`.
    pub fn network_xml(&self, net: &str) -> Result<String> {
        let spec = self.net(net)?;
        network_xml(
            &self.env,
            spec,
            &NetXmlOptions {
                ipv6: self.opts.ipv6,
            },
        )
    }

    pub(crate) fn lookup_domain(&self, conn: &Connect, name: &str) -> Result<Option<Domain>> {
        match conn.lookup_domain_by_name(name) {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_code(&e, ErrorNumber::NoDomain) => Ok(None),
            Err(e) => Err(ProviderError::libvirt(
                format!("looking up domain {name}"),
                e,
            )),
        }
    }

    fn lookup_network(&self, conn: &Connect, name: &str) -> Result<Option<Network>> {
        match conn.lookup_network_by_name(name) {
            Ok(n) => Ok(Some(n)),
            Err(e) if is_code(&e, ErrorNumber::NoNetwork) => Ok(None),
            Err(e) => Err(ProviderError::libvirt(
                format!("looking up network {name}"),
                e,
            )),
        }
    }

    // ---- networks -------------------------------------------------------

    /// Starts the named networks (all of the environment's when `nets` is
    /// empty), in parallel. Networks already active are left alone.
    pub fn start_networks(&self, nets: &[String]) -> Result<()> {
        let names: Vec<String> = if nets.is_empty() {
            self.env.nets.keys().cloned().collect()
        } else {
            nets.to_vec()
        };
        let specs = names
            .iter()
            .map(|n| self.net(n))
            .collect::<Result<Vec<_>>>()?;
        let conn = self.connection()?;
        let results: Vec<Result<()>> = if specs.len() <= 1 {
            specs.iter().map(|n| self.start_network(&conn, n)).collect()
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = specs
                    .iter()
                    .map(|n| {
                        let conn = &conn;
                        s.spawn(move || self.start_network(conn, n))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(ProviderError::Spec(
                                "a network start thread panicked".into(),
                            ))
                        })
                    })
                    .collect()
            })
        };
        first_error(results)
    }

    fn start_network(&self, conn: &Connect, net: &NetSpec) -> Result<()> {
        let what = || format!("starting network {} ({})", net.name, net.libvirt_name);
        if let Some(existing) = self.lookup_network(conn, &net.libvirt_name)? {
            if existing
                .is_active()
                .map_err(|e| ProviderError::libvirt(what(), e))?
            {
                return Ok(());
            }
            return existing
                .create()
                .map_err(|e| ProviderError::libvirt(what(), e));
        }
        let xml = network_xml(
            &self.env,
            net,
            &NetXmlOptions {
                ipv6: self.opts.ipv6,
            },
        )?;
        tracing::debug!("libvirt XML of network {}:\n{xml}", net.name);
        match conn.create_network_xml(&xml) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Another caller may have started it meanwhile.
                match self.lookup_network(conn, &net.libvirt_name) {
                    Ok(Some(n)) if n.is_active().unwrap_or(false) => Ok(()),
                    _ => Err(ProviderError::libvirt(what(), e)),
                }
            }
        }
    }

    /// `up` when the network is active, else `down`.
    pub fn network_state(&self, net: &str) -> Result<&'static str> {
        let spec = self.net(net)?;
        let conn = self.connection()?;
        Ok(match self.lookup_network(&conn, &spec.libvirt_name)? {
            Some(n) if n.is_active().unwrap_or(false) => "up",
            _ => "down",
        })
    }

    /// Stops the named networks (all of the environment's when `nets` is
    /// empty) that no running domain uses. Returns the networks kept
    /// because a running domain still uses them.
    pub fn stop_networks(&self, nets: &[String]) -> Result<Vec<String>> {
        let names: Vec<String> = if nets.is_empty() {
            self.env.nets.keys().cloned().collect()
        } else {
            nets.to_vec()
        };
        let specs = names
            .iter()
            .map(|n| self.net(n))
            .collect::<Result<Vec<_>>>()?;
        let conn = self.connection()?;
        let in_use = self.networks_in_use(&conn)?;
        let mut kept = Vec::new();
        let mut results = Vec::new();
        for net in specs {
            if in_use.contains(&net.libvirt_name) {
                kept.push(net.name.clone());
                continue;
            }
            results.push(self.destroy_network(&conn, &net.libvirt_name));
        }
        first_error(results)?;
        Ok(kept)
    }

    /// libvirt names of the networks some running domain has a nic on.
    fn networks_in_use(&self, conn: &Connect) -> Result<BTreeSet<String>> {
        let doms = conn
            .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            .map_err(|e| ProviderError::libvirt("listing running domains", e))?;
        let mut used = BTreeSet::new();
        for d in doms {
            let Ok(xml) = d.xml_desc(0) else { continue };
            let Ok(doc) = roxmltree::Document::parse(&xml) else {
                continue;
            };
            for iface in doc.descendants().filter(|n| n.has_tag_name("interface")) {
                for src in iface.children().filter(|n| n.has_tag_name("source")) {
                    if let Some(net) = src.attribute("network") {
                        used.insert(net.to_string());
                    }
                }
            }
        }
        Ok(used)
    }

    fn destroy_network(&self, conn: &Connect, name: &str) -> Result<()> {
        let Some(net) = self.lookup_network(conn, name)? else {
            return Ok(());
        };
        if net.is_active().unwrap_or(false) {
            if let Err(e) = net.destroy() {
                if !is_code(&e, ErrorNumber::NoNetwork)
                    && !is_code(&e, ErrorNumber::OperationInvalid)
                {
                    return Err(ProviderError::libvirt(
                        format!("stopping network {name}"),
                        e,
                    ));
                }
            }
        }
        // A persistent definition (not one of ours: ours are transient) is
        // removed too, so that nothing is left behind.
        if let Ok(Some(net)) = self.lookup_network(conn, name) {
            if net.is_persistent().unwrap_or(false) {
                net.undefine()
                    .map_err(|e| ProviderError::libvirt(format!("undefining network {name}"), e))?;
            }
        }
        Ok(())
    }

    // ---- disks and bootstrap --------------------------------------------

    /// Prepares the VM's disks (overlays, empty images, copies) and runs
    /// their `build:` steps.
    pub fn prepare(&self, vm: &str) -> Result<()> {
        crate::disks::prepare_vm_disks(&self.env, self.vm(vm)?)
    }

    /// Builds the VM's NoCloud seed (when its `bootstrap` is on); `start`
    /// attaches it.
    pub fn bootstrap(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        if !spec.bootstrap {
            return Ok(());
        }
        crate::seed::build_seed(&self.env, spec).map(|_| ())
    }

    // ---- domains --------------------------------------------------------

    /// Starts the VM; a no-op when it is running.
    pub fn start(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        let name = &spec.libvirt_name;
        let what = || format!("starting VM {vm} ({name})");
        let conn = self.connection()?;
        if let Some(dom) = self.lookup_domain(&conn, name)? {
            if dom
                .is_active()
                .map_err(|e| ProviderError::libvirt(what(), e))?
            {
                return Ok(());
            }
            return dom.create().map_err(|e| ProviderError::libvirt(what(), e));
        }
        self.create_domain(&conn, spec, 0)
    }

    /// Creates the VM's transient domain (`flags`: libvirt's create flags,
    /// e.g. `VIR_DOMAIN_START_PAUSED`); one that appeared meanwhile counts.
    pub(crate) fn create_domain(&self, conn: &Connect, spec: &VmSpec, flags: u32) -> Result<()> {
        let (vm, name) = (&spec.name, &spec.libvirt_name);
        let logs = self.env.prefix.logs_dir();
        std::fs::create_dir_all(&logs)
            .map_err(|e| ProviderError::io("creating the logs folder", &logs, e))?;
        let xml = domain_xml(&self.env, spec, &self.domain_xml_options(spec))?;
        tracing::debug!("libvirt XML of VM {vm}:\n{xml}");
        match conn.create_domain_xml(&xml, flags) {
            Ok(_) => Ok(()),
            Err(e) => match self.lookup_domain(conn, name) {
                Ok(Some(d)) if d.is_active().unwrap_or(false) => Ok(()),
                _ => Err(ProviderError::libvirt(
                    format!("starting VM {vm} ({name})"),
                    e,
                )),
            },
        }
    }

    /// Stops the VM hard (destroy); a no-op when it is down.
    pub fn stop(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        let conn = self.connection()?;
        self.destroy_domain(&conn, &spec.libvirt_name)
    }

    fn destroy_domain(&self, conn: &Connect, name: &str) -> Result<()> {
        let Some(dom) = self.lookup_domain(conn, name)? else {
            return Ok(());
        };
        if dom.is_active().unwrap_or(false) {
            if let Err(e) = dom.destroy() {
                if !is_code(&e, ErrorNumber::NoDomain)
                    && !is_code(&e, ErrorNumber::OperationInvalid)
                {
                    return Err(ProviderError::libvirt(format!("stopping domain {name}"), e));
                }
            }
        }
        if let Ok(Some(dom)) = self.lookup_domain(conn, name) {
            if dom.is_persistent().unwrap_or(false) {
                dom.undefine()
                    .map_err(|e| ProviderError::libvirt(format!("undefining domain {name}"), e))?;
            }
        }
        Ok(())
    }

    /// Asks the guest to power off (ACPI) and waits, up to
    /// `shutdown_timeout`, for the domain to be gone or shut off.
    pub fn shutdown(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        let name = &spec.libvirt_name;
        let conn = self.connection()?;
        let Some(dom) = self.lookup_domain(&conn, name)? else {
            return Ok(());
        };
        if !dom.is_active().unwrap_or(false) {
            return Ok(());
        }
        if let Err(e) = dom.shutdown() {
            if is_code(&e, ErrorNumber::NoDomain) || is_code(&e, ErrorNumber::OperationInvalid) {
                return Ok(());
            }
            return Err(ProviderError::libvirt(
                format!("shutting down VM {vm} ({name})"),
                e,
            ));
        }
        drop(dom);
        self.wait_down(&conn, vm, name, self.opts.shutdown_timeout)
    }

    fn wait_down(&self, conn: &Connect, vm: &str, name: &str, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match self.lookup_domain(conn, name)? {
                None => return Ok(()),
                Some(d) if !d.is_active().unwrap_or(false) => return Ok(()),
                Some(_) => {}
            }
            if start.elapsed() >= limit {
                return Err(ProviderError::Timeout(format!(
                    "VM {vm} did not shut down within {} s (use stop to power it off)",
                    limit.as_secs_f64()
                )));
            }
            std::thread::sleep(pause.min(limit.saturating_sub(start.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Reboots the VM (the guest's choice of method, usually ACPI).
    pub fn reboot(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        let name = &spec.libvirt_name;
        let conn = self.connection()?;
        match self.lookup_domain(&conn, name)? {
            Some(dom) if dom.is_active().unwrap_or(false) => dom
                .reboot(virt::sys::VIR_DOMAIN_REBOOT_DEFAULT)
                .map_err(|e| ProviderError::libvirt(format!("rebooting VM {vm} ({name})"), e)),
            _ => Err(ProviderError::Spec(format!(
                "VM {vm} is not running: cannot reboot it"
            ))),
        }
    }

    /// Lago's state string: `down` when the domain does not exist, else
    /// `running`, `paused`, `shut off`, `crashed`, `in shutdown`,
    /// `pmsuspended`, `blocked` or `no state`.
    pub fn state(&self, vm: &str) -> Result<String> {
        let spec = self.vm(vm)?;
        let conn = self.connection()?;
        let Some(dom) = self.lookup_domain(&conn, &spec.libvirt_name)? else {
            return Ok("down".to_string());
        };
        match dom.state() {
            Ok((Enum::Known(s), _)) => Ok(state_name(s).to_string()),
            Ok((Enum::Unknown(_), _)) | Err(_) => {
                // Gone between the lookup and the query?
                if self.lookup_domain(&conn, &spec.libvirt_name)?.is_none() {
                    Ok("down".to_string())
                } else {
                    Ok("unknown".to_string())
                }
            }
        }
    }

    /// Whether libvirt knows the domain (running, or defined).
    pub fn defined(&self, vm: &str) -> Result<bool> {
        let spec = self.vm(vm)?;
        let conn = self.connection()?;
        Ok(self.lookup_domain(&conn, &spec.libvirt_name)?.is_some())
    }

    /// Runs `virsh -c URL console DOMAIN` on the caller's terminal and
    /// returns its exit status.
    pub fn interactive_console(&self, vm: &str) -> Result<i32> {
        let spec = self.vm(vm)?;
        if !self.defined(vm)? {
            return Err(ProviderError::Spec(format!("VM {vm} is not running")));
        }
        if crate::tools::which("virsh").is_none() {
            return Err(ProviderError::MissingTool(
                "virsh is not installed (Debian: libvirt-clients)".into(),
            ));
        }
        let status = std::process::Command::new("virsh")
            .args(["-c", &self.opts.libvirt_url, "console", &spec.libvirt_name])
            .status()
            .map_err(|e| ProviderError::io("running virsh console", Path::new("virsh"), e))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    /// Destroys (and undefines) every domain and network of this
    /// environment: those named in the spec and every other whose name
    /// starts with the prefix tag (left-overs of a failed or interrupted
    /// `init`/`start`). Domains go first, then networks.
    pub fn cleanup(&self) -> Result<CleanupReport> {
        let conn = self.connection()?;
        let tag = self.env.prefix.tag();
        let mut dom_names: BTreeSet<String> = self
            .env
            .domains
            .values()
            .map(|v| v.libvirt_name.clone())
            .collect();
        let mut net_names: BTreeSet<String> = self
            .env
            .nets
            .values()
            .map(|n| n.libvirt_name.clone())
            .collect();
        if !tag.is_empty() {
            let doms = conn
                .list_all_domains(0)
                .map_err(|e| ProviderError::libvirt("listing domains", e))?;
            dom_names.extend(
                doms.iter()
                    .filter_map(|d| d.name().ok())
                    .filter(|n| n.starts_with(tag)),
            );
            let nets = conn
                .list_all_networks(0)
                .map_err(|e| ProviderError::libvirt("listing networks", e))?;
            net_names.extend(
                nets.iter()
                    .filter_map(|n| n.name().ok())
                    .filter(|n| n.starts_with(tag)),
            );
        }
        let mut report = CleanupReport::default();
        let mut results = Vec::new();
        for name in dom_names {
            if self.lookup_domain(&conn, &name)?.is_some() {
                let r = self.destroy_domain(&conn, &name);
                if r.is_ok() {
                    report.domains.push(name);
                }
                results.push(r);
            }
        }
        for name in net_names {
            if self.lookup_network(&conn, &name)?.is_some() {
                let r = self.destroy_network(&conn, &name);
                if r.is_ok() {
                    report.networks.push(name);
                }
                results.push(r);
            }
        }
        first_error(results)?;
        Ok(report)
    }

    // ---- not implemented yet ------------------------------------------

    pub fn extract_paths(&self, vm: &str) -> Result<()> {
        self.vm(vm)?;
        Err(ProviderError::NotImplemented(
            "extracting paths (the host copies files over SSH)".into(),
        ))
    }

    /// Copies `(path in the VM, path on the host)` pairs out of a VM's disks
    /// without booting it, with libguestfs's `virt-copy-out` (as Lago does):
    /// for a VM that is down. A path missing in the VM is skipped with a
    /// warning when `ignore_nopath`, else an error.
    pub fn extract_paths_dead(
        &self,
        vm: &str,
        pairs: &[(String, String)],
        ignore_nopath: bool,
    ) -> Result<()> {
        let spec = self.vm(vm)?;
        if which("virt-copy-out").is_none() {
            return Err(ProviderError::MissingTool(format!(
                "reading files from a stopped VM's disks needs libguestfs's virt-copy-out, \
                 which is not installed (Debian: apt-get install libguestfs-tools); or start \
                 VM {vm} and copy over SSH"
            )));
        }
        let disks: Vec<&Path> = spec
            .disks
            .iter()
            .filter(|d| d.format != "iso")
            .filter_map(|d| d.path.as_deref())
            .collect();
        for (remote, local) in pairs {
            let local = Path::new(local);
            let parent = local.parent().unwrap_or(Path::new("."));
            let io_err = |source| ProviderError::Io {
                what: format!("extracting {remote} from VM {vm}"),
                path: parent.to_path_buf(),
                source,
            };
            std::fs::create_dir_all(parent).map_err(io_err)?;
            // virt-copy-out puts REMOTE's last component inside a folder:
            // copy into a scratch folder beside LOCAL, then move it there.
            let scratch = tempfile::Builder::new()
                .prefix(".lago-extract.")
                .tempdir_in(parent)
                .map_err(io_err)?;
            let mut cmd = Command::new("virt-copy-out");
            cmd.env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg");
            for disk in &disks {
                cmd.arg("-a").arg(disk);
            }
            cmd.arg(remote).arg(scratch.path());
            match run(&mut cmd, &format!("extracting {remote} from VM {vm}")) {
                Ok(_) => {}
                Err(ProviderError::Command { stderr, .. })
                    if ignore_nopath && stderr.contains("No such file or directory") =>
                {
                    tracing::warn!("VM {vm}: {remote} does not exist: skipped");
                    continue;
                }
                Err(e) => return Err(e),
            }
            let name = Path::new(remote.trim_end_matches('/'))
                .file_name()
                .map(|n| scratch.path().join(n))
                .unwrap_or_else(|| scratch.path().to_path_buf());
            std::fs::rename(&name, local).map_err(io_err)?;
        }
        Ok(())
    }
}

fn first_error(results: Vec<Result<()>>) -> Result<()> {
    let mut errors: Vec<ProviderError> = results.into_iter().filter_map(|r| r.err()).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LibvirtSession>();
    }

    #[test]
    fn state_names_are_lagos() {
        assert_eq!(state_name(DomainState::Running), "running");
        assert_eq!(state_name(DomainState::Shutoff), "shut off");
        assert_eq!(state_name(DomainState::Shutdown), "in shutdown");
        assert_eq!(state_name(DomainState::PMSuspended), "pmsuspended");
        assert_eq!(state_name(DomainState::NoState), "no state");
    }
}
