//! Init's plugin work ([`WithPlugins`]): vm-types normalize the domains as
//! written, providers list the subnets in use on the hosts, import the
//! templates and prepare and bootstrap the disks.

use std::collections::BTreeSet;

use lago_plugin_api::abi::VmTypeBox;
use lago_plugin_api::spec::{DiskType, EnvSpec};
use serde_json::Value;

use super::{InitPlugins, SubnetInUse};
use crate::config::Config;
use crate::environment::Env;
use crate::error::Error;
use crate::ops::destroy::{OnFailure, Teardown, WithProviders};
use crate::plugins::client::{Provider, VmType};
use crate::plugins::Registry;
use crate::prefix::Prefix;
use crate::templates::{TemplateError, TemplateRepo, TemplateStore};

/// Init with the plugins of `registry`: vm-types normalize the domains,
/// providers list the hosts' subnets and prepare the disks.
pub struct WithPlugins<'a> {
    pub registry: &'a Registry,
    pub config: &'a Config,
    pub repo: RepoChoice,
    pub options: PrepareOptions,
}

impl InitPlugins for WithPlugins<'_> {
    fn normalize(&mut self, name: &str, domain: Value) -> Result<Value, Error> {
        normalize_domain(self.registry, self.config, name, domain)
    }

    fn subnets_in_use(
        &mut self,
        skeleton: &EnvSpec,
        providers: &BTreeSet<String>,
    ) -> Result<Vec<SubnetInUse>, Error> {
        subnets_in_use(skeleton, providers, self.registry)
    }

    fn prepare(&mut self, prefix: &Prefix, env: &mut EnvSpec) -> Result<(), Error> {
        // The prefix exists now: its log gets what init recorded so far.
        if let Err(e) = crate::logging::attach_prefix_log(prefix.path()) {
            tracing::warn!("cannot write the log of {}: {e}", prefix.path().display());
        }
        let prepared = prepare_new_env(env, self.config, self.registry, &self.repo, self.options);
        if prepared.is_err() && !env.hosts.is_empty() {
            // Volumes and pools already made on other hosts go with the
            // prefix that init now removes.
            let mut teardown =
                WithProviders::new(self.config, OnFailure::Fail, || Ok(self.registry));
            if let Err(e) = teardown.teardown(prefix, Some(env)) {
                tracing::warn!("cleaning the hosts after the failed init: {e}");
            }
        }
        prepared
    }
}

/// Which template repository `init` uses: `--template-repo-path` (a file or
/// URL), else `--template-repo-name` (searched in `template_repos`), else the
/// configuration's `[init] template_repo_path` / `template_repo_name`.
#[derive(Debug, Clone, Default)]
pub struct RepoChoice {
    pub path: Option<String>,
    pub name: Option<String>,
}

impl RepoChoice {
    fn load(&self, config: &Config) -> Result<Option<TemplateRepo>, Error> {
        let path = self
            .path
            .clone()
            .or_else(|| config.get("init", "template_repo_path").map(str::to_string))
            .filter(|p| !p.is_empty());
        let name = self
            .name
            .clone()
            .or_else(|| config.get("init", "template_repo_name").map(str::to_string))
            .filter(|n| !n.is_empty());
        let repo = match (path, name) {
            (Some(path), _) => TemplateRepo::load(&path),
            (None, Some(name)) => TemplateRepo::find_by_name(&name, &config.template_repos()),
            (None, None) => return Ok(None),
        };
        repo.map(Some).map_err(template_err)
    }
}

fn template_err(e: TemplateError) -> Error {
    if e.is_user_error() {
        Error::user_from(&e)
    } else {
        Error::internal_from(&e)
    }
}

/// Whether any disk of `env` comes from a template repository (a layer of
/// a layered export too: its template comes from there).
fn uses_repo_templates(env: &EnvSpec) -> bool {
    env.domains.values().flat_map(|vm| &vm.disks).any(|d| {
        d.disk_type == DiskType::Template
            && (crate::templates::exported::is_layered(d)
                || (d.base.is_none() && d.template_type.as_deref() != Some("qcow2")))
    })
}

/// What `init` skips.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    /// `--skip-bootstrap`: no VM is bootstrapped.
    pub skip_bootstrap: bool,
    /// `--skip-build`: the disks' `build` sections are dropped.
    pub skip_build: bool,
}

/// The vm-type plugin named `name`, or a user error listing those there are.
fn vm_type_named<'r>(
    registry: &'r Registry,
    vm: &str,
    name: &str,
) -> Result<&'r crate::plugins::Entry<VmTypeBox>, Error> {
    registry.vm_types.get(name).ok_or_else(|| {
        Error::user(format!(
            "domains/{vm}/vm-type: no vm-type plugin is named `{name}`; available: {}",
            registry
                .vm_types
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// The domain `name` as written in the init file goes
/// through its vm-type's `normalize_spec` (the domain's `vm-type`, else the
/// configured `default_vm_type`) before it is checked and planned, so a
/// vm-type can give its VMs defaults (Lago's `VMPlugin` did the same). A
/// vm-type that delegates leaves the domain as it is.
pub fn normalize_domain(
    registry: &Registry,
    config: &Config,
    name: &str,
    domain: Value,
) -> Result<Value, Error> {
    let vm_type = match domain.get("vm-type") {
        None => config.default_vm_type().to_string(),
        Some(Value::String(t)) => t.clone(),
        // Not a name: the init file check reports it.
        Some(_) => return Ok(domain),
    };
    // An unknown vm-type is reported after the init file's own checks (by
    // `prepare_new_env`), as every other mistake in it is reported first.
    let Some(entry) = registry.vm_types.get(&vm_type) else {
        return Ok(domain);
    };
    Ok(VmType::new(&vm_type, &entry.plugin)
        .normalize_spec(name, &domain)?
        .unwrap_or(domain))
}

/// Init's provider work, run on the planned and stored environment:
/// templates are imported into the store, then every
/// VM's disks are prepared (with their `build` steps) and bootstrapped
/// through its provider, in parallel. (Each domain went through its
/// vm-type's `normalize_spec` before planning: [`normalize_domain`].)
pub fn prepare_new_env(
    env: &mut EnvSpec,
    config: &Config,
    registry: &Registry,
    repo: &RepoChoice,
    options: PrepareOptions,
) -> Result<(), Error> {
    for vm in env.domains.values() {
        vm_type_named(registry, &vm.name, &vm.vm_type)?;
    }
    if options.skip_build {
        for disk in env.domains.values_mut().flat_map(|vm| vm.disks.iter_mut()) {
            disk.build = None;
        }
    }
    let repo = if uses_repo_templates(env) {
        repo.load(config)?
    } else {
        None
    };
    let store = TemplateStore::new(config.template_store());
    crate::templates::resolve_env(env, repo.as_ref(), &store).map_err(template_err)?;
    crate::templates::unpin_unused_host_keys(env, options.skip_bootstrap)?;
    std::fs::create_dir_all(env.prefix.images_dir())?;
    std::fs::create_dir_all(env.prefix.logs_dir())?;
    Env::from_spec(env.clone(), config.clone(), registry)?.prepare(options.skip_bootstrap)
}

/// The IPv4 networks in use on the hypervisor hosts of `skeleton` (an
/// environment with only its prefix and `hosts`), as the vm-providers
/// `providers` see them (their `used_subnets`). A provider that cannot reach
/// a host fails here, before anything is made on any host.
pub fn subnets_in_use(
    skeleton: &EnvSpec,
    providers: &BTreeSet<String>,
    registry: &Registry,
) -> Result<Vec<SubnetInUse>, Error> {
    let mut out = Vec::new();
    for name in providers {
        let Some(entry) = registry.providers.get(name) else {
            continue;
        };
        out.append(&mut Provider::open(name, &entry.plugin, skeleton)?.used_subnets()?);
    }
    Ok(out)
}
