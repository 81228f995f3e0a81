//! `lago snapshot`: snapshot the VMs (all, or those named), or list their
//! snapshots (`-l`).

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::env::{open_env, vm_names};
use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("snapshot")
        .about("Create snapshots for all deployed resources")
        .long_about(
            "Snapshot every VM (or those given with -n) under SNAPSHOT_NAME: a running VM keeps \
             its memory too (revert resumes it without booting), a stopped VM its disks. With \
             -l, list each VM's snapshots.",
        )
        .arg(
            Arg::new("list_only")
                .short('l')
                .long("list")
                .action(ArgAction::SetTrue)
                .help("List current available snapshots"),
        )
        .arg(
            Arg::new("vm_names")
                .short('n')
                .long("vm-names")
                .value_name("VM_NAME")
                .action(ArgAction::Append)
                .help("Only this VM (repeat -n for more; default: all)"),
        )
        .arg(
            Arg::new("snapshot_name")
                .value_name("SNAPSHOT_NAME")
                .required_unless_present("list_only")
                .help("Name of the snapshot to create"),
        )
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let mut env = open_env(ctx)?;
    let vms = vm_names(args, "vm_names");
    if args.get_flag("list_only") {
        return Ok(Output::Data(env.list_snapshots(&vms)?));
    }
    let name = args
        .get_one::<String>("snapshot_name")
        .ok_or_else(|| Error::user("snapshot: SNAPSHOT_NAME is missing"))?;
    env.snapshot(name, &vms)?;
    Ok(Output::Nothing)
}
