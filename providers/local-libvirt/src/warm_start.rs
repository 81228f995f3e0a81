//! The session side of warm starts (see [`crate::warm`] for the design):
//! choose warm or cold, make the warm image once, restore a clone and hand
//! it its identity. A warm start that cannot happen or fails is a cold
//! start with the reason logged, never an error of `start`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use lago_plugin_api::spec::VmSpec;
use lago_plugin_api::tracing;
use virt::connect::Connect;

use crate::domain::domain_xml;
use crate::error::{ProviderError, Result};
use crate::saveimage::SaveImage;
use crate::seed::SeedData;
use crate::session::LibvirtSession;
use crate::tools::run;
use crate::warm::{
    bake_mac, clone_xml, cold_reason, exchange, expect_answer, fresh_marker, fresh_overlay_backup,
    identity_message, nic_identities, open_lock_file, prune_stale, randomness, record_last_start,
    restoring_marker, save_domain, shape_of, template_sha1, template_stamp, AgentProtocol,
    CloneIdentity, WarmImage, WarmKey, WarmSetting, SHAPE_DIR,
};

/// How long the template's one boot may take before it parks (TCG, a
/// loaded host).
const BAKE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a restored clone's agent may take to apply its identity.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(120);

impl LibvirtSession {
    /// Starts `spec` (no domain of it exists): warm when it can, else cold.
    /// Records which in the prefix (`lago status`).
    pub(crate) fn start_warm_or_cold(&self, conn: &Connect, spec: &VmSpec) -> Result<()> {
        let env = self.env();
        let marker = fresh_marker(env, spec);
        let fresh = marker.exists();
        let reason = match self.try_warm(conn, spec, fresh) {
            Ok(()) => {
                remove_if_there(&marker)?;
                record_last_start(env, spec, "warm")?;
                return Ok(());
            }
            Err(reason) => reason,
        };
        tracing::info!("VM {}: cold start ({reason})", spec.name);
        remove_if_there(&marker)?;
        record_last_start(env, spec, &format!("cold: {reason}"))?;
        self.create_domain(conn, spec, 0)
    }

    /// A warm start of `spec`, or why not (the reason for the log).
    fn try_warm(
        &self,
        conn: &Connect,
        spec: &VmSpec,
        fresh: bool,
    ) -> std::result::Result<(), String> {
        match WarmSetting::current() {
            Ok(WarmSetting::Auto) => {}
            Ok(WarmSetting::Off) => {
                return Err("warm starts are off ([lago] warm_start = off, or --cold)".into())
            }
            Err(e) => return Err(e.to_string()),
        }
        if let Some(reason) = cold_reason(spec, fresh) {
            return Err(reason);
        }
        let key = self.warm_key(conn, spec).map_err(|e| e.to_string())?;
        let image = key.image();
        if !image.is_complete_for(&key) {
            self.make_warm_image(conn, spec, &key, &image)
                .map_err(|e| format!("making the warm image failed: {e}"))?;
        }
        let started = Instant::now();
        report_stage(spec, "restoring");
        // Held until the VM has its identity or is gone again: found
        // unlocked by a later command, the start was killed half-way.
        let marker = restoring_marker(self.env(), spec);
        let restoring = hold_marker(&marker).map_err(|e| e.to_string())?;
        let result = self.restore_clone(conn, spec, &image);
        let outcome = match result {
            Ok(()) => {
                tracing::info!(
                    "VM {}: warm start (restored and identity given in {:.2} s)",
                    spec.name,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Err(e) => {
                // Nothing of the attempt stays: no domain, the fresh overlay back.
                let _ = self.destroy_domain(conn, &spec.libvirt_name);
                if e.is_damaged_image() {
                    drop_damaged_image(&image, &e);
                }
                match self.put_back_fresh_overlay(spec) {
                    Ok(()) => Err(format!("the warm start failed: {e}")),
                    Err(undo) => Err(format!(
                        "the warm start failed ({e}), and so did putting back its disk ({undo})"
                    )),
                }
            }
        };
        remove_if_there(&marker).map_err(|e| e.to_string())?;
        drop(restoring);
        outcome
    }

    /// A warm start of `spec` killed half-way (its marker is there and
    /// nobody holds it): its domain, restored but never given an identity,
    /// is destroyed and its fresh overlay put back, so that the VM reads as
    /// down and its next start starts it afresh (warm again). Called before
    /// the VM's state is read or it is started. Nothing when there is no
    /// such start.
    pub(crate) fn drop_abandoned_warm_start(&self, conn: &Connect, spec: &VmSpec) -> Result<()> {
        let marker = restoring_marker(self.env(), spec);
        if !marker.exists() {
            return Ok(());
        }
        let f = match std::fs::File::options().write(true).open(&marker) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ProviderError::io("opening", &marker, e)),
        };
        if f.try_lock().is_err() {
            return Ok(()); // another process is restoring it now
        }
        tracing::info!(
            "VM {}: a warm start was interrupted before the VM got its identity: \
             its domain is removed and its disk made fresh again",
            spec.name
        );
        self.destroy_domain(conn, &spec.libvirt_name)?;
        self.put_back_fresh_overlay(spec)?;
        std::fs::write(fresh_marker(self.env(), spec), b"")
            .map_err(|e| ProviderError::io("writing", fresh_marker(self.env(), spec), e))?;
        remove_if_there(&marker)
    }

    /// The key of `spec`'s warm image.
    pub fn warm_key(&self, conn: &Connect, spec: &VmSpec) -> Result<WarmKey> {
        let template = template_of(spec)?;
        let (shape_env, shape_vm) = shape_of(self.env(), spec);
        let mut opts = self.domain_xml_options(spec);
        opts.seed = None;
        opts.console_log = Some(Path::new(SHAPE_DIR).join("console.log"));
        opts.warm_identity = true;
        let lv = |what: &'static str| move |e| ProviderError::libvirt(what, e);
        Ok(WarmKey {
            template_sha1: template_sha1(template)?,
            template_stamp: template_stamp(template)?,
            template: template.to_path_buf(),
            shape_xml: domain_xml(&shape_env, &shape_vm, &opts)?,
            qemu_version: conn.hyp_version().map_err(lv("reading QEMU's version"))?,
            libvirt_version: conn
                .lib_version()
                .map_err(lv("reading libvirt's version"))?,
        })
    }

    /// Makes the warm image of `key` unless another start made it meanwhile
    /// (its lock serialises them).
    fn make_warm_image(
        &self,
        conn: &Connect,
        spec: &VmSpec,
        key: &WarmKey,
        image: &WarmImage,
    ) -> Result<()> {
        let _lock = match image.try_lock()? {
            Some(lock) => lock,
            None => {
                report_stage(spec, "waiting for the warm image another start is making");
                image.lock()?
            }
        };
        if image.is_complete_for(key) {
            return Ok(());
        }
        report_stage(spec, "making the warm image (one boot of its template)");
        if image.dir.exists() {
            tracing::info!(
                "the warm image {} is incomplete or damaged: making it again",
                image.dir.display()
            );
            std::fs::remove_dir_all(&image.dir)
                .map_err(|e| ProviderError::io("removing a damaged warm image", &image.dir, e))?;
        }
        let started = Instant::now();
        tracing::info!(
            "making the warm image of VM {}'s shape (one boot of its template): {}",
            spec.name,
            image.dir.display()
        );
        let staging = image.staging();
        let result = self.bake(conn, spec, key, image, &staging);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        } else {
            tracing::info!(
                "warm image made in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            for stale in prune_stale(key) {
                tracing::info!("removed the stale warm image {}", stale.display());
            }
        }
        result
    }

    /// Boots the template once as `lago-warm-<key>`, parks it and saves it
    /// into `staging`, then moves `staging` into place.
    fn bake(
        &self,
        conn: &Connect,
        spec: &VmSpec,
        key: &WarmKey,
        image: &WarmImage,
        staging: &Path,
    ) -> Result<()> {
        let digest = key.digest();
        let name = format!("lago-warm-{}", &digest[..12]);
        let io = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |e| ProviderError::io(what, p, e)
        };
        // left-overs of a start killed meanwhile
        self.destroy_domain(conn, &name)?;
        if staging.exists() {
            std::fs::remove_dir_all(staging)
                .map_err(io("removing an unfinished warm image", staging))?;
        }
        std::fs::create_dir_all(staging).map_err(io("creating the warm image folder", staging))?;
        let mut vm = spec.clone();
        vm.libvirt_name = name.clone();
        vm.disks[0].path = Some(staging.join("disk.qcow2"));
        for (i, nic) in vm.nics.iter_mut().enumerate() {
            nic.mac = bake_mac(&digest, i);
        }
        let disk = &vm.disks[0];
        if let Some(mut cmd) = crate::disks::prepare_command(&vm, disk)? {
            run(&mut cmd, "creating the warm image's overlay")?;
        }
        let mut opts = self.domain_xml_options(spec);
        opts.seed = None;
        opts.console_log = Some(staging.join("console.log"));
        opts.warm_identity = true;
        let xml = domain_xml(self.env(), &vm, &opts)?;
        tracing::debug!("libvirt XML of the warm image's boot:\n{xml}");
        // AUTODESTROY: a lago killed meanwhile leaves no domain behind.
        let dom = conn
            .create_domain_xml(&xml, virt::sys::VIR_DOMAIN_START_AUTODESTROY)
            .map_err(|e| ProviderError::libvirt(format!("booting the template as {name}"), e))?;
        // Made by lago before libvirtd writes into it: a file libvirtd
        // creates is root's, mode 0600, and a user's lago (in groups libvirt
        // and lago) could then never read it to make a clone's image.
        let memory = staging.join("memory.sav");
        let parked = expect_answer(
            &name,
            exchange(conn, &name, "park\n", BAKE_TIMEOUT),
            "parked",
        )
        .and_then(|()| {
            std::fs::File::create(&memory).map_err(io("creating", &memory))?;
            set_mode(&memory, 0o644)
        })
        .and_then(|()| save_domain(&dom, &memory));
        if let Err(e) = parked {
            let _ = dom.destroy();
            return Err(e);
        }
        let frozen = staging.join("disk.qcow2");
        set_mode(&frozen, 0o444)?;
        std::fs::write(staging.join("key.txt"), key.describe())
            .map_err(io("writing the warm image's key", staging))?;
        // the save image is whole and ours
        SaveImage::read(&memory)?;
        std::fs::rename(staging, &image.dir)
            .map_err(io("moving the warm image into place", &image.dir))
    }

    /// Restores `spec` from `image` and gives it its identity.
    fn restore_clone(&self, conn: &Connect, spec: &VmSpec, image: &WarmImage) -> Result<()> {
        let env = self.env();
        let started = Instant::now();
        let step = |what: &str| {
            tracing::debug!(
                "VM {}: warm start: {what} at {:.3} s",
                spec.name,
                started.elapsed().as_secs_f64()
            )
        };
        let disk = crate::disks::planned_path(spec, &spec.disks[0])?.to_path_buf();
        let io = |what: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |e| ProviderError::io(what, p, e)
        };
        // The VM's disk becomes a copy of the frozen overlay (backed by the
        // same template): the disk the saved memory knows.
        // The fresh overlay is kept aside until the start succeeded.
        let tmp = disk.with_extension("warm-tmp");
        std::fs::copy(image.disk(), &tmp).map_err(io("copying the warm image's disk", &tmp))?;
        set_mode(&tmp, 0o644)?;
        let backup = fresh_overlay_backup(&disk);
        if !backup.exists() {
            std::fs::rename(&disk, &backup).map_err(io("keeping the VM's fresh disk", &backup))?;
        }
        std::fs::rename(&tmp, &disk).map_err(io("replacing the VM's disk", &disk))?;

        let saved = SaveImage::read(&image.memory()).map_err(ProviderError::damaged_image)?;
        let mut nics = Vec::new();
        for nic in &spec.nics {
            let net = env.nets.get(&nic.net).ok_or_else(|| {
                ProviderError::Spec(format!("VM {}: no network '{}'", spec.name, nic.net))
            })?;
            nics.push((nic.mac.clone(), net.libvirt_name.clone()));
        }
        let logs = env.prefix.logs_dir();
        std::fs::create_dir_all(&logs).map_err(io("creating the logs folder", &logs))?;
        let id = CloneIdentity {
            name: spec.libvirt_name.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            disk,
            nics,
            console_log: env.prefix.console_log_path(&spec.name),
        };
        let xml = clone_xml(&saved.xml, &id)?;
        let sav = env
            .prefix
            .images_dir()
            .join(format!("{}.warm.sav", spec.name));
        remove_if_there(&sav)?;
        saved.write_clone(&image.memory(), &sav, &xml)?;
        step("disk and memory image written");
        let restored = conn.restore_domain_flags(
            &sav.to_string_lossy(),
            None,
            virt::sys::VIR_DOMAIN_SAVE_RUNNING,
        );
        remove_if_there(&sav)?;
        restored.map_err(|e| {
            // QEMU could not load what the image holds: made again next time
            ProviderError::damaged_image(ProviderError::libvirt(
                format!("restoring VM {} from the warm image", spec.name),
                e,
            ))
        })?;
        step("restored");
        report_stage(spec, "identity");
        let seed = SeedData::from_prefix(env, spec)?;
        let (machine_id, random) = randomness();
        let protocol = AgentProtocol::of(spec).ok_or_else(|| {
            ProviderError::Spec(format!(
                "VM {}: its template has no identity agent",
                spec.name
            ))
        })?;
        let nics = nic_identities(env, spec, protocol);
        let msg = identity_message(&seed, &nics, &machine_id, &random, SystemTime::now());
        let answer = expect_answer(
            &spec.libvirt_name,
            exchange(conn, &spec.libvirt_name, &msg, IDENTITY_TIMEOUT),
            "ok",
        );
        step("identity given");
        answer?;
        // the VM has its identity: its fresh overlay is not needed any more
        let _ = std::fs::remove_file(&backup);
        Ok(())
    }

    /// Makes the VM's disk its fresh overlay again after a warm start that
    /// failed or was abandoned: the one kept aside (the VM's disk is
    /// replaced only once it is there; without it the disk was never
    /// touched).
    fn put_back_fresh_overlay(&self, spec: &VmSpec) -> Result<()> {
        let path = crate::disks::planned_path(spec, &spec.disks[0])?;
        let backup = fresh_overlay_backup(path);
        if !backup.exists() {
            return Ok(());
        }
        std::fs::rename(&backup, path)
            .map_err(|e| ProviderError::io("putting back the VM's fresh disk", path, e))
    }
}

/// Creates `marker` and holds it locked (the returned file) while a warm
/// start restores.
fn hold_marker(marker: &Path) -> Result<std::fs::File> {
    let f = open_lock_file(marker)?;
    f.lock()
        .map_err(|e| ProviderError::io("locking", marker, e))?;
    Ok(f)
}

/// Removes a warm image its restore showed damaged (so that the next warm
/// start makes it again), unless another process holds it.
fn drop_damaged_image(image: &WarmImage, why: &ProviderError) {
    let Ok(Some(_lock)) = image.try_lock() else {
        return;
    };
    match std::fs::remove_dir_all(&image.dir) {
        Ok(()) => tracing::info!(
            "removed the warm image {} (it could not be restored: {why}); the next warm start makes it again",
            image.dir.display()
        ),
        Err(e) => tracing::warn!(
            "could not remove the damaged warm image {}: {e}",
            image.dir.display()
        ),
    }
}

/// Shows `stage` on the VM's line of the host's live view.
fn report_stage(spec: &VmSpec, stage: &str) {
    if let Ok(host) = lago_plugin_api::host() {
        host.report_stage(&spec.name, stage);
    }
}

/// The store image under the VM's template disk.
fn template_of(spec: &VmSpec) -> Result<&Path> {
    spec.disks
        .first()
        .and_then(|d| d.base.as_deref())
        .ok_or_else(|| ProviderError::Spec(format!("VM {}: no template disk", spec.name)))
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ProviderError::io("removing", path, e)),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ProviderError::io("setting the mode of", path, e))
}
