//! `lago destroy [-y] [--all-prefixes]`: tear down the prefix's VMs and
//! networks through their providers, release its subnets, remove its folder
//! (and the workdir when no prefix is left).

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
    let store = lease_store(&ctx.config)?;
    if let Some(p) = ctx.globals.prefix_path.clone() {
        let prefix = Prefix::open(&p)?;
        if !yes && !confirm(&prefix.path().display().to_string())? {
            return Ok(Output::Text("Aborting on user input".into()));
        }
        let mut hook = |_: &Prefix, env: Option<&EnvSpec>| provider_teardown(ctx, env);
        destroy_prefix(&prefix, &store, &mut hook)?;
        return Ok(Output::Nothing);
    }
    let wd = ctx.workdir()?;
    let names: Option<Vec<String>> = if all {
        None
    } else {
        let p = wd.resolve(ctx.globals.prefix_name.as_deref())?;
        Some(vec![p.name().to_string()])
    };
    let what = match &names {
        None => format!("all the prefixes under {}", wd.path().display()),
        Some(n) => wd.prefix_path(&n[0]).display().to_string(),
    };
    if !yes && !confirm(&what)? {
        return Ok(Output::Text("Aborting on user input".into()));
    }
    let mut hook = |_: &Prefix, env: Option<&EnvSpec>| provider_teardown(ctx, env);
    let only_link = destroy_in_workdir(&wd, names.as_deref(), &store, &mut hook)?;
    if only_link {
        tracing::info!(
            "{} is a symlink: removed the link only",
            wd.path().display()
        );
    }
    Ok(Output::Nothing)
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
