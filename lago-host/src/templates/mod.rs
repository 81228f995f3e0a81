//! Templates: repositories, the local store, and resolving an environment's
//! template disks to store images.

pub mod exported;
pub mod repo;
pub mod source;
pub mod store;
pub mod xz;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lago_plugin_api::spec::{
    DiskType, EnvSpec, VmSpec, MAKE_A_COPY_KEY, SOURCE_PATH_KEY, TEMPLATE_IMAGE_KEY,
};

pub use repo::{ResolvedVersion, TemplateRepo};
pub use source::Source;
pub use store::{StoredImage, TemplateStore};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template repository {origin}: {reason}")]
    BadRepo { origin: String, reason: String },
    #[error("template repository {name:?} not found; looked for {}{}", searched.join(" and "), repo_hint(name))]
    RepoNotFound { name: String, searched: Vec<String> },
    #[error("template {template:?} is not in repository {repo:?}; it has: {}", available.join(", "))]
    TemplateNotFound {
        template: String,
        repo: String,
        available: Vec<String>,
    },
    #[error("template {template:?} has no version {version:?}; it has: {}", available.join(", "))]
    VersionNotFound {
        template: String,
        version: String,
        available: Vec<String>,
    },
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },
    #[error(
        "template image {image} has sha1 {got}, but its source says {expected}; nothing was kept"
    )]
    HashMismatch {
        image: String,
        expected: String,
        got: String,
    },
    #[error("exported image {image}: {reason}")]
    BadExport { image: String, reason: String },
    #[error("template metadata {location}: {reason}")]
    BadMetadata { location: String, reason: String },
    #[error(
        "waited {waited:?} for the lock {path}: another lago is still importing this template"
    )]
    LockTimeout { path: PathBuf, waited: Duration },
    #[error(
        "the template store holds {path}, which is {what}: lago does not use or follow it \
         (members of group `lago` can write a shared store); remove it and its .hash, \
         .metadata and .lock files, and init imports the template again"
    )]
    BadStoreFile { path: PathBuf, what: String },
    #[error(
        "domains/{vm}/disks/{disk}: template {template:?} needs a template repository, \
         and none is configured (--template-repo-path or --template-repo-name)"
    )]
    NoRepo {
        vm: String,
        disk: usize,
        template: String,
    },
}

/// How to get the repository `name` that was not found.
fn repo_hint(name: &str) -> &'static str {
    if name == "embedded" {
        " (build it once with `sudo lago-build-template`, from the package, or \
         `sudo bash scripts/template/build.sh` in a source tree)"
    } else {
        " (give the repository file with --template-repo-path FILE, or put it \
         under the `template_repos` folder of lago.conf's [init] section)"
    }
}

impl TemplateError {
    /// Whether the user can fix this (bad repository, name, hash) rather than
    /// the system failing under us.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            TemplateError::Io { .. } | TemplateError::LockTimeout { .. }
        )
    }
}

/// Imports every template an environment uses into the store (different
/// templates in parallel) and points each template disk at its store image:
/// fills `base`, `base_format`, `metadata`, the overlay `path`, and the VM's
/// `distro` and `root-password` from the template metadata when the init file
/// left them out.
pub fn resolve_env(
    env: &mut EnvSpec,
    repo: Option<&TemplateRepo>,
    store: &TemplateStore,
) -> Result<(), TemplateError> {
    // Which store images are needed, once each.
    let mut wanted: BTreeMap<String, ResolvedVersion> = BTreeMap::new();
    let mut disk_image: Vec<(String, usize, String)> = Vec::new();
    // Layers of a layered export: their template's image is needed too.
    let mut layer_image: BTreeMap<(String, usize), String> = BTreeMap::new();
    for (vm_name, vm) in &env.domains {
        for (i, disk) in vm.disks.iter().enumerate() {
            let layered = exported::is_layered(disk);
            if disk.disk_type != DiskType::Template || (disk.base.is_some() && !layered) {
                continue;
            }
            if disk.template_type.as_deref() == Some("qcow2") && !layered {
                continue; // an explicit base image: see below
            }
            let template = disk.template_name.clone().unwrap_or_default();
            let repo = repo.ok_or_else(|| TemplateError::NoRepo {
                vm: vm_name.clone(),
                disk: i,
                template: template.clone(),
            })?;
            let version = repo.resolve(&template, disk.template_version.as_deref())?;
            let name = version.store_name();
            if layered {
                layer_image.insert((vm_name.clone(), i), name.clone());
            } else {
                disk_image.push((vm_name.clone(), i, name.clone()));
            }
            wanted.entry(name).or_insert(version);
        }
    }

    let images: BTreeMap<String, StoredImage> = std::thread::scope(|scope| {
        let handles: Vec<_> = wanted
            .iter()
            .map(|(name, version)| (name, scope.spawn(|| store.ensure(version))))
            .collect();
        handles
            .into_iter()
            .map(|(name, handle)| {
                let image = handle.join().unwrap_or_else(|_| {
                    Err(TemplateError::Io {
                        what: format!("importing template {name}"),
                        source: std::io::Error::other("import thread panicked"),
                    })
                })?;
                Ok((name.clone(), image))
            })
            .collect::<Result<_, TemplateError>>()
    })?;

    let images_dir = env.prefix.images_dir();
    for (vm_name, i, name) in disk_image {
        let image = &images[&name];
        let Some(vm) = env.domains.get_mut(&vm_name) else {
            continue;
        };
        if vm.distro.is_none() {
            vm.distro = image
                .metadata
                .get("distro")
                .and_then(|d| d.as_str())
                .map(str::to_string);
        }
        if vm.root_password.is_none() {
            vm.root_password = image
                .metadata
                .get("root-password")
                .and_then(|d| d.as_str())
                .filter(|p| !p.is_empty())
                .map(str::to_string);
        }
        let disk = &mut vm.disks[i];
        disk.base = Some(image.path.clone());
        disk.base_format = Some(image.format.clone());
        disk.format = "qcow2".to_string();
        if let Some(map) = image.metadata.as_object() {
            disk.metadata = map.clone().into_iter().collect();
        }
        if disk.path.is_none() {
            disk.path = Some(images_dir.join(format!("{vm_name}_{}.qcow2", disk.name)));
        }
    }

    prepare_exported(env, &images, &layer_image)?;

    // Template disks with an explicit qcow2 base, and disks created in the prefix.
    for (vm_name, vm) in env.domains.iter_mut() {
        for disk in vm.disks.iter_mut() {
            match disk.disk_type {
                DiskType::Template if disk.template_type.as_deref() == Some("qcow2") => {
                    if disk.base.is_none() {
                        disk.base = disk.path.take();
                        disk.base_format = Some("qcow2".to_string());
                    }
                    disk.format = "qcow2".to_string();
                    if disk.path.is_none() {
                        disk.path = Some(images_dir.join(format!("{vm_name}_{}.qcow2", disk.name)));
                    }
                }
                DiskType::Empty if disk.path.is_none() => {
                    disk.path =
                        Some(images_dir.join(format!("{vm_name}_{}.{}", disk.name, disk.format)));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Makes the exported images of `env` (compressed ones, layers) ready in
/// the prefix, in parallel, and makes each copy its disk's base (see
/// [`exported`]). `layer_image` names the store image of each layer's
/// template.
fn prepare_exported(
    env: &mut EnvSpec,
    images: &BTreeMap<String, StoredImage>,
    layer_image: &BTreeMap<(String, usize), String>,
) -> Result<(), TemplateError> {
    let images_dir = env.prefix.images_dir();
    let mut work = Vec::new();
    for (vm_name, vm) in &env.domains {
        for (i, disk) in vm.disks.iter().enumerate() {
            let Some(image) = exported::image_to_prepare(disk)? else {
                continue;
            };
            let template = layer_image.get(&(vm_name.clone(), i)).map(|name| {
                let expected = disk
                    .extra
                    .get(exported::TEMPLATE_SHA1_KEY)
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                (&images[name], expected)
            });
            let dst = exported::prepared_path(&images_dir, vm_name, disk);
            work.push((vm_name.clone(), i, image, dst, template));
        }
    }
    if work.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(&images_dir).map_err(|source| TemplateError::Io {
        what: format!("creating {}", images_dir.display()),
        source,
    })?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .iter()
            .map(|(vm, _, image, dst, template)| {
                let what = format!("VM {vm}: exported image {}", image.display());
                let template = template.as_ref().map(|(s, h)| (*s, h.as_deref()));
                scope.spawn(move || exported::prepare(image, dst, template, &what))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(TemplateError::Io {
                    what: "preparing an exported image".into(),
                    source: std::io::Error::other("thread panicked"),
                })
            })
        })
    })?;
    for (vm_name, i, _, dst, template) in work {
        let Some(disk) = env
            .domains
            .get_mut(&vm_name)
            .and_then(|vm| vm.disks.get_mut(i))
        else {
            continue;
        };
        if disk.disk_type == DiskType::File {
            // The decompressed copy is the disk: nothing left to copy.
            disk.extra.remove(MAKE_A_COPY_KEY);
            disk.extra.remove(SOURCE_PATH_KEY);
            continue;
        }
        disk.base = Some(dst);
        disk.base_format = Some("qcow2".to_string());
        if let Some((stored, _)) = template {
            // For a later layered export of this disk.
            disk.extra.insert(
                TEMPLATE_IMAGE_KEY.to_string(),
                serde_json::json!({"path": stored.path, "format": stored.format}),
            );
            if disk.metadata.is_empty() {
                if let Some(map) = stored.metadata.as_object() {
                    disk.metadata = map.clone().into_iter().collect();
                }
            }
        }
    }
    Ok(())
}

/// The values lago acts on in a template's metadata (docs/template.md):
/// `bootstrap` (how the VM gets its identity) and `ssh-host-key` (how its
/// host key is known). A value lago does not know would silently pick
/// another way (a seed nothing reads, trust on first use instead of a
/// pinned key), so it is refused. Errors: the reason, naming the key, the
/// value and the values allowed.
/// A template's `.metadata` text, parsed and checked ([`check_metadata`]).
/// Errors: the reason (JSON syntax or a value lago does not know).
pub(crate) fn parse_metadata(text: &str) -> Result<serde_json::Value, String> {
    let metadata = serde_json::from_str(text).map_err(|e| e.to_string())?;
    check_metadata(&metadata)?;
    Ok(metadata)
}

fn check_metadata(metadata: &serde_json::Value) -> Result<(), String> {
    let Some(map) = metadata.as_object() else {
        return Err(format!("expected a JSON object, found {metadata}"));
    };
    for (key, allowed) in [
        ("bootstrap", &["seed", "offline"][..]),
        ("ssh-host-key", &["seed", "offline", "console"][..]),
    ] {
        match map.get(key) {
            None => {}
            Some(serde_json::Value::String(v)) if allowed.contains(&v.as_str()) => {}
            Some(v) => {
                return Err(format!(
                    "\"{key}\" is {v}, expected one of {} (or no \"{key}\")",
                    allowed
                        .iter()
                        .map(|a| format!("\"{a}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
    Ok(())
}

/// Keeps the host key generated at init for the VMs that will be offered
/// it: bootstrapped ones, whose NoCloud seed carries it (`ssh_keys`) or whose
/// disk gets it written at init (offline bootstrap, when the template's
/// `ssh-host-key` is `offline`). It is dropped (spec and private file) when
/// the template says it makes its own (`ssh-host-key: console`), for an
/// offline bootstrap that was not asked to write it, and without bootstrap:
/// lago then learns the key at the first connection (see docs/template.md,
/// Host keys).
pub fn unpin_unused_host_keys(env: &mut EnvSpec, skip_bootstrap: bool) -> std::io::Result<()> {
    for vm in env.domains.values_mut() {
        let offered = vm.bootstrap
            && !skip_bootstrap
            && if vm.offline_bootstrap() {
                host_key_source(vm) == Some("offline")
            } else {
                host_key_source(vm) != Some("console")
            };
        if vm.ssh_host_key.is_some() && !offered {
            vm.ssh_host_key = None;
            match std::fs::remove_file(env.prefix.host_key_path(&vm.name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Whether the VM's host key is pinned at init: lago offered it and the
/// template metadata says the VM installs it (`ssh-host-key: seed`, or
/// `offline` where lago writes it into the disk). An offered key without
/// that promise is pinned only once the VM presents it (else the console's
/// block or the first key seen): see [`crate::ssh::HostKeyPolicy::Console`].
pub fn host_key_pinned(vm: &VmSpec) -> bool {
    vm.ssh_host_key.is_some() && matches!(host_key_source(vm), Some("seed") | Some("offline"))
}

/// The template metadata key `ssh-host-key` of a VM's first disk: `seed`
/// (the template installs the host key of the NoCloud seed: lago pins the
/// key it generated at init), `offline` (lago writes the key into the disk
/// at init and pins it), `console` (the template makes its own and
/// prints it on the serial console in cloud-init's format: lago learns it
/// from there and waits for it), or `None` (unknown: lago offers its key in
/// the seed and pins it when the VM presents it, else learns the key from
/// the console when printed there, else the first key seen).
pub fn host_key_source(vm: &VmSpec) -> Option<&str> {
    vm.template_metadata("ssh-host-key")
}

#[cfg(test)]
mod tests {
    use super::check_metadata;
    use serde_json::json;

    #[test]
    fn metadata_values_lago_acts_on_are_checked() {
        for ok in [
            json!({}),
            json!({"distro": "el7", "bootstrap": "offline", "ssh-host-key": "offline"}),
            json!({"bootstrap": "seed", "ssh-host-key": "console"}),
        ] {
            assert_eq!(check_metadata(&ok), Ok(()), "{ok}");
        }
        let typo = check_metadata(&json!({"bootstrap": "offlin"})).expect_err("typo");
        assert!(
            typo.contains("\"bootstrap\" is \"offlin\"") && typo.contains("\"offline\""),
            "{typo}"
        );
        let bogus = check_metadata(&json!({"ssh-host-key": "bogus"})).expect_err("bogus");
        assert!(bogus.contains("\"ssh-host-key\""), "{bogus}");
        assert!(check_metadata(&json!({"bootstrap": true})).is_err());
        assert!(check_metadata(&json!(["bootstrap"])).is_err());
    }
}
