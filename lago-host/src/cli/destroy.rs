//! `lago destroy [-y] [--all-prefixes] [--force]`: tear down the prefix's
//! VMs and networks through their providers, release its subnets, remove its
//! folder (and the workdir when nothing else is left in it).
//!
//! Only what lago made is destroyed (a prefix with its `uuid` marker, a
//! workdir with its marker or prefixes): anything else is refused with exit
//! 2 and left untouched. A prefix that was never started needs no provider;
//! when the provider is needed and fails (libvirtd down, a wrong URL),
//! nothing is removed unless `--force` is given.

use std::io::{BufRead, Write};

use clap::{Arg, ArgAction, ArgMatches, Command};
use lago_plugin_api::spec::EnvSpec;

use super::{Context, Output};
use crate::environment::teardown_env;
use crate::error::Error;
use crate::prefix::lifecycle::{destroy_in_workdir, destroy_prefix, lease_store};
use crate::prefix::Prefix;

pub fn command() -> Command {
    Command::new("destroy")
        .about("Cleanup and remove the whole prefix and any files in it")
        .arg(
            Arg::new("all_prefixes")
                .long("all-prefixes")
                .action(ArgAction::SetTrue)
                .help("Destroy all the prefixes in the workdir"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help(
                    "Remove the prefix and release its leases even when its VMs and \
                     networks cannot be removed through their provider (they may remain)",
                ),
        )
        .arg(
            Arg::new("yes")
                .short('y')
                .long("yes")
                .action(ArgAction::SetTrue)
                .help("Don't ask for confirmation, assume yes"),
        )
}

/// Ask on the terminal; an empty answer is yes (as Lago), no answer at all
/// (stdin closed) is a refusal.
fn confirm(what: &str) -> Result<bool, Error> {
    eprint!("Do you really want to destroy {what}? [Yn] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::internal(format!("cannot read the answer: {e}")))?;
    if n == 0 {
        return Err(Error::user(
            "no answer on standard input: pass -y/--yes to destroy without asking",
        ));
    }
    let answer = line.trim();
    Ok(answer.is_empty() || answer.starts_with(['y', 'Y']))
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let yes = args.get_flag("yes");
    let all = args.get_flag("all_prefixes");
    let force = args.get_flag("force");
    let store = lease_store(&ctx.config)?;
    if let Some(p) = ctx.globals.prefix_path.clone() {
        let prefix = Prefix::open(&p)?;
        prefix.require_lago()?;
        if !yes && !confirm(&prefix.path().display().to_string())? {
            return Ok(Output::Text("Aborting on user input".into()));
        }
        let mut hook =
            |p: &Prefix, env: Option<&EnvSpec>| provider_teardown_for_destroy(ctx, p, env, force);
        destroy_prefix(&prefix, &store, &mut hook)?;
        return Ok(Output::Nothing);
    }
    let (wd, name) = ctx.workdir_and_prefix_name()?;
    wd.require_lago()?;
    let names: Option<Vec<String>> = if all {
        None
    } else {
        let p = wd.resolve(name.as_deref())?;
        p.require_lago()?;
        Some(vec![p.name().to_string()])
    };
    let what = match &names {
        None => format!("all the prefixes under {}", wd.path().display()),
        Some(n) => wd.prefix_path(&n[0]).display().to_string(),
    };
    if !yes && !confirm(&what)? {
        return Ok(Output::Text("Aborting on user input".into()));
    }
    let mut hook =
        |p: &Prefix, env: Option<&EnvSpec>| provider_teardown_for_destroy(ctx, p, env, force);
    let only_link = destroy_in_workdir(&wd, names.as_deref(), &store, &mut hook)?;
    if only_link {
        tracing::info!(
            "{} is a symlink: removed the link only",
            wd.path().display()
        );
    }
    Ok(Output::Nothing)
}

/// The destroy hook: [`provider_teardown`]; when it fails, the error names
/// `--force`, and with `--force` the failure becomes a warning naming what
/// may remain in the hypervisor.
fn provider_teardown_for_destroy(
    ctx: &mut Context,
    prefix: &Prefix,
    env: Option<&EnvSpec>,
    force: bool,
) -> Result<(), Error> {
    let Err(e) = provider_teardown(ctx, env) else {
        return Ok(());
    };
    if force {
        let names = |m: Option<Vec<String>>| m.filter(|v| !v.is_empty()).map(|v| v.join(", "));
        let doms = names(env.map(|e| e.domains.values().map(|v| v.libvirt_name.clone()).collect()));
        let nets = names(env.map(|e| e.nets.values().map(|n| n.libvirt_name.clone()).collect()));
        tracing::warn!(
            "--force: removing {} although its VMs and networks could not be removed ({e}); \
             these may remain in libvirt: domains [{}], networks [{}] (virsh destroy/undefine, \
             net-destroy/net-undefine)",
            prefix.path().display(),
            doms.unwrap_or_default(),
            nets.unwrap_or_default(),
        );
        return Ok(());
    }
    let msg = format!(
        "cannot remove the VMs and networks of the prefix {} through their provider: {}; \
         nothing was removed. Fix that (is libvirtd running? is libvirt_url right?) and run \
         destroy again, or pass --force to remove the prefix and release its leases anyway \
         (its VMs and networks may then remain in libvirt)",
        prefix.path().display(),
        e.message()
    );
    Err(match e.class() {
        crate::error::ErrorClass::User => Error::user(msg),
        crate::error::ErrorClass::Internal => Error::internal(msg),
    })
}

/// THE DESTROY/CLEANUP HOOK: remove the environment's domains and networks
/// through the providers, BEFORE any file or lease of the prefix goes.
pub(crate) fn provider_teardown(ctx: &mut Context, env: Option<&EnvSpec>) -> Result<(), Error> {
    if env.is_none() {
        return Ok(());
    }
    let config = ctx.config.clone();
    let registry = ctx.plugins()?;
    teardown_env(env, &config, registry)
}
