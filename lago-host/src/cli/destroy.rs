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

use super::{Context, Output};
use crate::error::Error;
use crate::prefix::Prefix;
use crate::sdk::{self, DestroyTarget};

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
    let (target, what) = match ctx.globals.prefix_path.clone() {
        Some(p) => {
            let prefix = Prefix::open(&p)?;
            prefix.require_lago()?;
            let what = prefix.path().display().to_string();
            (DestroyTarget::Prefix(prefix), what)
        }
        None => {
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
            let target = DestroyTarget::Workdir { workdir: wd, names };
            (target, what)
        }
    };
    if !yes && !confirm(&what)? {
        return Ok(Output::Text("Aborting on user input".into()));
    }
    let config = ctx.config.clone();
    let only_link = sdk::destroy(&target, &config, force, || Ok(ctx.plugins()?))?;
    if only_link {
        if let DestroyTarget::Workdir { workdir, .. } = &target {
            tracing::info!(
                "{} is a symlink: removed the link only",
                workdir.path().display()
            );
        }
    }
    Ok(Output::Nothing)
}
