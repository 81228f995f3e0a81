//! `lago ansible_hosts`: Create Ansible host inventory of the environment.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;
use crate::sdk;

pub fn command() -> Command {
    Command::new("ansible_hosts")
        .about("Create Ansible host inventory of the environment")
        .long_about(
            "This method iterates through all the VMs and creates an Ansible host inventory. \
             For each vm it defines an IP address and a private key. The default groups are \
             based on the values which associated with the following keys: 'vm-type', \
             'groups', 'vm-provider' (and 'host' in an environment over several hosts). \
             Nested keys can be used by specifying the path to the \
             key, for example 'disks/0/metadata/distro'. If the value associated with the key \
             is a list, a group will be created for every item in that list.",
        )
        .arg(
            Arg::new("keys")
                .short('k')
                .long("keys")
                .value_name("KEY")
                .num_args(0..)
                // Lago's `nargs='*'`: `-k` may be repeated, the last wins.
                .action(ArgAction::Append)
                .help(
                    "Path to the keys that should be used as groups \
                     [default: vm-type groups vm-provider]; given again, \
                     the last -k wins (as in Lago)",
                ),
        )
}

/// The INI inventory with the default out-format (as Lago prints it);
/// `{group: [host line, ...]}` rendered by any other `-f` format.
pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let keys: Vec<String> = args
        .get_occurrences::<String>("keys")
        .and_then(|mut o| o.next_back())
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let inventory = sdk::ansible_inventory(&ctx.prefix()?, &keys)?;
    Ok(if ctx.out_format() == "default" {
        Output::Text(inventory.to_ini())
    } else {
        Output::Data(inventory.to_value())
    })
}
