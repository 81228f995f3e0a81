//! `lago init`: plan an environment from a LagoInitFile, store it in a new
//! prefix, and prepare its disks through the providers.
//!
//! Positionals as Lago: `lago init [WORKDIR] [CONFIG]`: with two, the
//! workdir comes first and the init file second; a single one is the init
//! file; the workdir defaults to `-w` or `./.lago`, the init file to
//! `./LagoInitFile`.

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::{Context, Output};
use crate::error::Error;
use crate::prefix::WORKDIR_NAME;
use crate::sdk;

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
        .arg(Arg::new("ssh_key").long("ssh-key").value_name("PATH").value_parser(clap::value_parser!(PathBuf)).help("Private key the images already accept: used for the prefix instead of a generated one (copied, 0600), and the VMs are not bootstrapped"))
        .arg(Arg::new("skip_build").long("skip-build").action(ArgAction::SetTrue).help("If passed, will skip the build commands specified in the build section of all the disks"))
}

/// The init file and workdir Lago's positional rules give.
pub fn positionals(
    workdir: Option<&str>,
    config: Option<&str>,
    workdir_flag: Option<&PathBuf>,
) -> (PathBuf, PathBuf) {
    let (wd, init) = match (workdir, config) {
        (Some(w), Some(c)) => (Some(PathBuf::from(w)), PathBuf::from(c)),
        (Some(single), None) | (None, Some(single)) => (None, PathBuf::from(single)),
        (None, None) => (None, PathBuf::from("LagoInitFile")),
    };
    let wd = wd
        .or_else(|| workdir_flag.cloned())
        .unwrap_or_else(|| PathBuf::from(WORKDIR_NAME));
    (init, wd)
}

pub fn run(ctx: &mut Context, args: &ArgMatches) -> Result<Output, Error> {
    let s = |id: &str| args.get_one::<String>(id).cloned();
    let (init_file, workdir) = positionals(
        s("workdir").as_deref(),
        s("virt_config").as_deref(),
        ctx.globals.workdir_path.as_ref(),
    );
    if let Some(v) = s("template_store") {
        ctx.config.set("init", "template_store", v);
    }
    if let Some(v) = s("template_repos") {
        ctx.config.set("init", "template_repos", v);
    }
    let options = sdk::InitOptions {
        prefix_name: ctx.globals.prefix_name.clone(),
        prefix_path: ctx.globals.prefix_path.clone(),
        set_current: args.get_flag("set_current"),
        template_repo_path: s("template_repo_path"),
        template_repo_name: s("template_repo_name"),
        skip_bootstrap: args.get_flag("skip_bootstrap"),
        skip_build: args.get_flag("skip_build"),
        ssh_key: args.get_one::<PathBuf>("ssh_key").cloned(),
        ..sdk::InitOptions::default()
    };
    let config = ctx.config.clone();
    let registry = ctx.plugins()?;
    sdk::init_with(config, registry, &init_file, &workdir, &options)?;
    Ok(Output::Nothing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lago_positional_rules() {
        let p = |a: Option<&str>, b: Option<&str>| positionals(a, b, None);
        assert_eq!(
            p(None, None),
            (PathBuf::from("LagoInitFile"), PathBuf::from(".lago"))
        );
        assert_eq!(
            p(Some("f.yaml"), None),
            (PathBuf::from("f.yaml"), PathBuf::from(".lago"))
        );
        assert_eq!(
            p(Some("wd"), Some("f.yaml")),
            (PathBuf::from("f.yaml"), PathBuf::from("wd"))
        );
        let flag = PathBuf::from("/w");
        assert_eq!(
            positionals(Some("f"), None, Some(&flag)).1,
            PathBuf::from("/w")
        );
        assert_eq!(
            positionals(Some("x"), Some("f"), Some(&flag)).1,
            PathBuf::from("x")
        );
    }
}
