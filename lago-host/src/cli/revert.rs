//! `lago revert`: every VM back to a snapshot, disks and run state.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::env::{open_env, vm_names};
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("revert")
        .about("Revert resources to a snapshot")
        .long_about(
            "Revert every VM (or those given with -n) to SNAPSHOT_NAME: disks and run state as \
             they were when it was taken. VMs that were running run again and answer SSH when \
             this returns. A VM without that snapshot is an error before anything changes.",
        )
        .arg(
            Arg::new("snapshot_name")
                .value_name("SNAPSHOT_NAME")
                .required(true)
                .help("Name of the snapshot to revert to"),
        )
        .arg(
            Arg::new("vm_names")
                .short('n')
                .long("vm-names")
                .value_name("VM_NAME")
                .action(ArgAction::Append)
                .help("Only this VM (repeat -n for more; default: all)"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let env = open_env(ctx)?;
    let name = args
        .get_one::<String>("snapshot_name")
        .ok_or_else(|| Error::user("revert: SNAPSHOT_NAME is missing"))?;
    env.revert(name, &vm_names(args, "vm_names"))?;
    Ok(Output::Nothing)
}
