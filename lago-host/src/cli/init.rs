//! `lago init`: Initialize a directory for framework deployment.

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;

pub fn command() -> Command {
    Command::new("init")
        .about("Initialize a directory for framework deployment")
        .arg(
            Arg::new("workdir")
                .value_name("WORKDIR")
                .help("Workdir directory of the deployment, if none passed, it will use $PWD/.lago"),
        )
        .arg(Arg::new("virt_config").value_name("VIRT_CONFIG").help(
            "Configuration of resources to deploy, json and yaml file formats are supported, \
             takes option precedence over workdir. Will use $PWD/LagoInitFile by default. \
             You can use any env vars in that file, including the extra ones \
             LAGO_PREFIX_PATH LAGO_WORKDIR_PATH and LAGO_INITFILE_PATH",
        ))
        .arg(Arg::new("template_repo_path").long("template-repo-path").help("Repo file describing the templates"))
        .arg(Arg::new("template_repo_name").long("template-repo-name").help("Name of the repo from the template repos dir"))
        .arg(Arg::new("template_store").long("template-store").help("Location to store templates at"))
        .arg(Arg::new("template_repos").long("template-repos").help("Location to store repos"))
        .arg(Arg::new("set_current").long("set-current").action(ArgAction::SetTrue).help("If passed, it will set the newly created prefix as the current one"))
        .arg(Arg::new("skip_bootstrap").long("skip-bootstrap").action(ArgAction::SetTrue).help("If passed, will skip bootstrapping the images"))
        .arg(Arg::new("skip_build").long("skip-build").action(ArgAction::SetTrue).help("If passed, will skip the build commands specified in the build section of all the disks"))
}

pub fn run(_ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    Err(Error::not_implemented("lago init"))
}
