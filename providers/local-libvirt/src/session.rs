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

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use lago_plugin_api::spec::{EnvSpec, HostSpec, NetSpan, NetSpec, VmSpec, DEFAULT_HOST};
use lago_plugin_api::tracing;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use virt::network::Network;

use crate::domain::{
    domain_xml, model_vendor, nested_feature, parse_capabilities, DomainXmlOptions, HostCpu,
};
use crate::error::{is_code, ProviderError, Result};
use crate::net::{network_xml, NetXmlOptions};
use crate::options::{resolve_domain_type, DomainType, ProviderOptions};
use crate::seed::seed_path;
use crate::tools::{run, which};
use crate::tunnel::HostShell;

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

/// The provider session of one environment.
pub struct LibvirtSession {
    env: EnvSpec,
    opts: ProviderOptions,
    /// One connection per libvirt host: `None` is the default host, else a
    /// key of the environment's `hosts`.
    conns: Mutex<BTreeMap<Option<String>, Connect>>,
    host: OnceLock<Option<HostCpu>>,
    /// Held while volumes go to another host: VMs are prepared in
    /// parallel, and two of them must not make one pool or send one
    /// template at once.
    remote_volumes: Mutex<()>,
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
            conns: Mutex::new(BTreeMap::new()),
            remote_volumes: Mutex::new(()),
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

    /// The shared connection to the default host, (re)opened when needed.
    pub fn connection(&self) -> Result<Connect> {
        self.connection_to(None)
    }

    /// The shared connection to `host` (None: the default host), (re)opened
    /// when needed. An unreachable host is an error that names it.
    pub fn connection_to(&self, host: Option<&str>) -> Result<Connect> {
        let key = host.map(str::to_string);
        let mut guard = self
            .conns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = guard.get(&key) {
            if c.is_alive().unwrap_or(false) {
                return Ok(c.clone());
            }
        }
        let (url, what) = match host {
            None => (
                self.opts.libvirt_url.as_str(),
                format!("connecting to libvirt at {}", self.opts.libvirt_url),
            ),
            Some(h) => {
                let spec = self.host_spec(h)?;
                (
                    spec.libvirt_url.as_str(),
                    format!("connecting to host {h} at {}", spec.libvirt_url),
                )
            }
        };
        let c = crate::auth::open(url, &self.opts.libvirt_auth)
            .map_err(|e| crate::diagnose::connect_error(what, e))?;
        guard.insert(key, c.clone());
        Ok(c)
    }

    /// The connection to the host `vm` runs on.
    pub(crate) fn vm_connection(&self, vm: &VmSpec) -> Result<Connect> {
        self.connection_to(vm.host.as_deref())
    }

    /// The libvirt URL of the host `vm` runs on.
    fn libvirt_url_of(&self, vm: &VmSpec) -> Result<&str> {
        match &vm.host {
            None => Ok(&self.opts.libvirt_url),
            Some(h) => Ok(&self.host_spec(h)?.libvirt_url),
        }
    }

    fn remote_volumes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.remote_volumes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn host_spec(&self, name: &str) -> Result<&HostSpec> {
        self.env.hosts.get(name).ok_or_else(|| {
            ProviderError::Spec(format!("no host named '{name}' in this environment"))
        })
    }

    /// Refuses `what` for a VM on another host than the default one.
    pub(crate) fn default_host_only(&self, vm: &VmSpec, what: &str) -> Result<()> {
        match &vm.host {
            None => Ok(()),
            Some(h) => Err(ProviderError::Spec(format!(
                "VM {}: {what}: available for VMs on the default host only; it runs on host {h}",
                vm.name
            ))),
        }
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
            console_log: None,
            warm_identity: false,
        }
    }

    /// The domain XML `start` would create for the VM named `vm`.
    pub fn domain_xml(&self, vm: &str) -> Result<String> {
        self.domain_xml_of(self.vm(vm)?)
    }

    /// The domain XML of `spec`; for a VM on another host, with the paths
    /// of its volumes there and that host's domain type.
    fn domain_xml_of(&self, spec: &VmSpec) -> Result<String> {
        let Some(host) = &spec.host else {
            return domain_xml(&self.env, spec, &self.domain_xml_options(spec));
        };
        let conn = self.vm_connection(spec)?;
        let paths = crate::remote::vm_paths(&conn, host, &self.env, spec)?;
        let mut there = spec.clone();
        for d in &mut there.disks {
            d.path = paths.get(&d.name).cloned();
        }
        let caps = conn
            .capabilities()
            .ok()
            .and_then(|c| parse_capabilities(&c).ok());
        let domain_type = match self.opts.domain_type {
            crate::options::DomainTypeSetting::Kvm => DomainType::Kvm,
            crate::options::DomainTypeSetting::Qemu => DomainType::Qemu,
            crate::options::DomainTypeSetting::Auto => match caps.as_ref() {
                Some(c) if c.kvm_offered => DomainType::Kvm,
                _ => DomainType::Qemu,
            },
        };
        let nested = match (&spec.cpu_model, domain_type, caps.as_ref()) {
            (Some(model), DomainType::Kvm, Some(h)) => nested_feature(
                h.vendor.as_deref(),
                &h.features,
                model_vendor(model).as_deref(),
            ),
            _ => None,
        };
        let opts = DomainXmlOptions {
            domain_type,
            nested_feature: nested,
            tcg_cpu: self.opts.tcg_cpu.clone(),
            seed: if spec.bootstrap {
                paths.get("seed").cloned()
            } else {
                None
            },
            seed_bus: self.opts.seed_bus,
            console_log: paths.get("console").cloned(),
            warm_identity: false,
        };
        domain_xml(&self.env, &there, &opts)
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
        self.start_network_here(conn, net)?;
        match &net.span {
            Some(span) => self.start_span(net, span),
            None => Ok(()),
        }
    }

    /// The shells and tunnel addresses of every host a spanned net reaches:
    /// the default host first.
    fn span_hosts(&self, span: &NetSpan) -> Result<Vec<(Option<String>, Ipv4Addr, HostShell)>> {
        let mut out = Vec::new();
        for h in &span.hosts {
            let spec = self.host_spec(h)?;
            out.push((
                Some(h.clone()),
                crate::tunnel::host_address(h, spec)?,
                HostShell::of(spec)?,
            ));
        }
        let shell = HostShell::of_url(&self.opts.libvirt_url)?;
        let addr = match (&shell, out.first()) {
            (HostShell::Local, Some((_, peer, _))) => crate::tunnel::local_address_towards(*peer)?,
            _ => crate::tunnel::host_address(
                "default",
                &HostSpec {
                    libvirt_url: self.opts.libvirt_url.clone(),
                    ssh: None,
                    address: None,
                    extra: Default::default(),
                },
            )?,
        };
        out.insert(0, (None, addr, shell));
        Ok(out)
    }

    /// A spanned net on its other hosts: a bridge network there (with the
    /// host's address on NAT nets, no DHCP or DNS: those are the default
    /// host's), and the VXLAN devices joining every host's bridge.
    fn start_span(&self, net: &NetSpec, span: &NetSpan) -> Result<()> {
        for h in &span.hosts {
            let conn = self.connection_to(Some(h))?;
            let xml = crate::net::span_network_xml(net, span.host_addresses.get(h).copied());
            tracing::debug!("libvirt XML of network {} on host {h}:\n{xml}", net.name);
            self.create_network(&conn, net, &xml)
                .map_err(|e| ProviderError::Spec(format!("host {h}: {e}")))?;
        }
        let hosts = self.span_hosts(span)?;
        for (i, (a, _, _)) in hosts.iter().enumerate() {
            if let Some((b, _, _)) = hosts[..i].iter().find(|(_, x, _)| *x == hosts[i].1) {
                return Err(ProviderError::Spec(format!(
                    "hosts {} and {} are the same machine ({}): one entry per libvirt host",
                    b.as_deref().unwrap_or(DEFAULT_HOST),
                    a.as_deref().unwrap_or(DEFAULT_HOST),
                    hosts[i].1
                )));
            }
        }
        for (i, (name, local, shell)) in hosts.iter().enumerate() {
            let peers: Vec<Ipv4Addr> = hosts
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, a, _))| *a)
                .collect();
            crate::tunnel::attach(shell, net, span.vni, *local, &peers).map_err(|e| {
                ProviderError::Spec(format!(
                    "joining network {} on host {}: {e}",
                    net.name,
                    name.as_deref().unwrap_or(DEFAULT_HOST)
                ))
            })?;
        }
        Ok(())
    }

    /// Removes a spanned net from its other hosts (where no running domain
    /// uses it) and its VXLAN devices everywhere; returns the hosts where it
    /// stays up.
    fn stop_span(&self, net: &NetSpec, span: &NetSpan, default_kept: bool) -> Result<Vec<String>> {
        let mut kept = Vec::new();
        let mut results = Vec::new();
        for h in &span.hosts {
            let conn = self.connection_to(Some(h))?;
            if self.networks_in_use(&conn)?.contains(&net.libvirt_name) {
                kept.push(h.clone());
                continue;
            }
            results.push(self.destroy_network(&conn, &net.libvirt_name));
            let shell = HostShell::of(self.host_spec(h)?)?;
            results.push(crate::tunnel::detach(&shell, net));
        }
        if !default_kept {
            results.push(crate::tunnel::detach(
                &HostShell::of_url(&self.opts.libvirt_url)?,
                net,
            ));
        }
        first_error(results)?;
        Ok(kept)
    }

    /// Creates the network of `net` from `xml` on `conn` unless it is active.
    fn create_network(&self, conn: &Connect, net: &NetSpec, xml: &str) -> Result<()> {
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
        match conn.create_network_xml(xml) {
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

    fn start_network_here(&self, conn: &Connect, net: &NetSpec) -> Result<()> {
        let xml = network_xml(
            &self.env,
            net,
            &NetXmlOptions {
                ipv6: self.opts.ipv6,
            },
        )?;
        tracing::debug!("libvirt XML of network {}:\n{xml}", net.name);
        self.create_network(conn, net, &xml)
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
            let here_kept = in_use.contains(&net.libvirt_name);
            if let Some(span) = &net.span {
                match self.stop_span(net, span, here_kept) {
                    Ok(hosts) if !hosts.is_empty() => {
                        kept.push(format!("{} (on host {})", net.name, hosts.join(", ")))
                    }
                    Ok(_) => {}
                    Err(e) => results.push(Err(e)),
                }
            }
            if here_kept {
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
        let spec = self.vm(vm)?;
        match &spec.host {
            None => crate::disks::prepare_vm_disks(&self.env, spec),
            Some(h) => {
                let conn = self.vm_connection(spec)?;
                let _one_at_a_time = self.remote_volumes();
                crate::remote::prepare_vm_disks(&conn, h, &self.env, spec)
            }
        }
    }

    /// Builds the VM's NoCloud seed (when its `bootstrap` is on); `start`
    /// attaches it. A template that reads no seed (`bootstrap: offline`)
    /// gets the same data written into the VM's disk instead
    /// ([`crate::offline`]).
    pub fn bootstrap(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        if !spec.bootstrap {
            return Ok(());
        }
        if spec.offline_bootstrap() {
            return crate::offline::bootstrap(&self.env, spec);
        }
        let iso = crate::seed::build_seed(&self.env, spec)?;
        if let Some(h) = &spec.host {
            let conn = self.vm_connection(spec)?;
            let _one_at_a_time = self.remote_volumes();
            crate::remote::upload_seed(&conn, h, &self.env, spec, &iso)?;
        }
        Ok(())
    }

    // ---- domains --------------------------------------------------------

    /// Starts the VM; a no-op when it is running.
    pub fn start(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        let name = &spec.libvirt_name;
        let what = || format!("starting VM {vm} ({name})");
        let conn = self.vm_connection(spec)?;
        self.drop_abandoned_warm_start(&conn, spec)?;
        if let Some(dom) = self.lookup_domain(&conn, name)? {
            if dom
                .is_active()
                .map_err(|e| ProviderError::libvirt(what(), e))?
            {
                return Ok(());
            }
            return dom
                .create()
                .map_err(|e| crate::diagnose::start_error(&conn, what(), e));
        }
        self.start_warm_or_cold(&conn, spec)
    }

    /// Creates the VM's transient domain (`flags`: libvirt's create flags,
    /// e.g. `VIR_DOMAIN_START_PAUSED`); one that appeared meanwhile counts.
    pub(crate) fn create_domain(&self, conn: &Connect, spec: &VmSpec, flags: u32) -> Result<()> {
        let (vm, name) = (&spec.name, &spec.libvirt_name);
        let logs = self.env.prefix.logs_dir();
        std::fs::create_dir_all(&logs)
            .map_err(|e| ProviderError::io("creating the logs folder", &logs, e))?;
        let xml = self.domain_xml_of(spec)?;
        tracing::debug!("libvirt XML of VM {vm}:\n{xml}");
        match conn.create_domain_xml(&xml, flags) {
            Ok(_) => Ok(()),
            Err(e) => match self.lookup_domain(conn, name) {
                Ok(Some(d)) if d.is_active().unwrap_or(false) => Ok(()),
                _ => Err(crate::diagnose::start_error(
                    conn,
                    format!("starting VM {vm} ({name})"),
                    e,
                )),
            },
        }
    }

    /// Stops the VM hard (destroy); a no-op when it is down.
    pub fn stop(&self, vm: &str) -> Result<()> {
        let spec = self.vm(vm)?;
        let conn = self.vm_connection(spec)?;
        self.destroy_domain(&conn, &spec.libvirt_name)
    }

    pub(crate) fn destroy_domain(&self, conn: &Connect, name: &str) -> Result<()> {
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
        let conn = self.vm_connection(spec)?;
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
        let conn = self.vm_connection(spec)?;
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
        let conn = self.vm_connection(spec)?;
        // a warm start killed half-way left a domain with no identity
        self.drop_abandoned_warm_start(&conn, spec)?;
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
        let conn = self.vm_connection(spec)?;
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
            .args([
                "-c",
                self.libvirt_url_of(spec)?,
                "console",
                &spec.libvirt_name,
            ])
            .status()
            .map_err(|e| ProviderError::io("running virsh console", Path::new("virsh"), e))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    /// Destroys (and undefines) every domain and network of this
    /// environment on every host it uses: those named in the spec and every
    /// other whose name starts with the prefix tag (left-overs of a failed
    /// or interrupted `init`/`start`). Domains go first, then networks; on
    /// other hosts then the tunnels and the environment's storage pool. A
    /// host that cannot be reached does not stop the others: its error is
    /// returned after they are clean.
    pub fn cleanup(&self) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        let mut results = vec![self.cleanup_host(None, &mut report)];
        for h in self.env.hosts.keys() {
            let r = self.cleanup_host(Some(h), &mut report);
            if let Err(e) = &r {
                tracing::warn!("cleaning host {h}: {e}");
            }
            results.push(r);
        }
        first_error(results)?;
        Ok(report)
    }

    fn cleanup_host(&self, host: Option<&str>, report: &mut CleanupReport) -> Result<()> {
        let conn = self.connection_to(host)?;
        let tag = self.env.prefix.tag();
        let here = |vm: &&VmSpec| vm.host.as_deref() == host;
        let vms: Vec<&VmSpec> = self.env.domains.values().filter(here).collect();
        let mut dom_names: BTreeSet<String> = vms.iter().map(|v| v.libvirt_name.clone()).collect();
        let spans_here = |n: &&NetSpec| match (&n.span, host) {
            (_, None) => true,
            (Some(span), Some(h)) => span.hosts.iter().any(|x| x == h),
            (None, Some(_)) => false,
        };
        let nets: Vec<&NetSpec> = self.env.nets.values().filter(spans_here).collect();
        let mut net_names: BTreeSet<String> = nets.iter().map(|n| n.libvirt_name.clone()).collect();
        if !tag.is_empty() {
            let doms = conn
                .list_all_domains(0)
                .map_err(|e| ProviderError::libvirt("listing domains", e))?;
            dom_names.extend(
                doms.iter()
                    .filter_map(|d| d.name().ok())
                    .filter(|n| n.starts_with(tag)),
            );
            let all_nets = conn
                .list_all_networks(0)
                .map_err(|e| ProviderError::libvirt("listing networks", e))?;
            net_names.extend(
                all_nets
                    .iter()
                    .filter_map(|n| n.name().ok())
                    .filter(|n| n.starts_with(tag)),
            );
        }
        let mut results = Vec::new();
        let reported = |name: String| match host {
            None => name,
            Some(h) => format!("{name} (host {h})"),
        };
        for name in dom_names {
            if self.lookup_domain(&conn, &name)?.is_some() {
                let r = self.destroy_domain(&conn, &name);
                if r.is_ok() {
                    report.domains.push(reported(name));
                }
                results.push(r);
            }
        }
        for name in net_names {
            if self.lookup_network(&conn, &name)?.is_some() {
                let r = self.destroy_network(&conn, &name);
                if r.is_ok() {
                    report.networks.push(reported(name));
                }
                results.push(r);
            }
        }
        let any_span = self.env.nets.values().any(|n| n.span.is_some());
        if any_span {
            let shell = match host {
                None => HostShell::of_url(&self.opts.libvirt_url)?,
                Some(h) => HostShell::of(self.host_spec(h)?)?,
            };
            for net in nets.iter().filter(|n| n.span.is_some()) {
                results.push(crate::tunnel::detach(&shell, net));
            }
        }
        if let Some(h) = host {
            results.push(crate::remote::remove_env_pool(&conn, h, &self.env, &vms).map(|_| ()));
        }
        first_error(results)
    }

    /// The IPv4 subnets of every network on every host of the environment,
    /// each with a description (`network NAME on host HOST`): a lease must
    /// avoid them.
    pub fn used_subnets(&self) -> Result<Vec<(Ipv4Addr, u8, String)>> {
        let mut out = Vec::new();
        let hosts = std::iter::once(None).chain(self.env.hosts.keys().map(|h| Some(h.as_str())));
        for host in hosts {
            let conn = self.connection_to(host)?;
            let nets = conn
                .list_all_networks(0)
                .map_err(|e| ProviderError::libvirt("listing networks", e))?;
            for n in nets {
                let (Ok(name), Ok(xml)) = (n.name(), n.xml_desc(0)) else {
                    continue;
                };
                for (addr, len) in crate::net::ipv4_addresses(&xml) {
                    out.push((
                        addr,
                        len,
                        format!("network {name} on host {}", host.unwrap_or(DEFAULT_HOST)),
                    ));
                }
            }
        }
        Ok(out)
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
        self.default_host_only(spec, "reading files from a stopped VM's disks")?;
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
