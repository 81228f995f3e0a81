//! `lago deploy`: Run scripts that install necessary RPMs and configuration.
//!
//! Each VM's `metadata.deploy-scripts` (the copies init put in the prefix)
//! run over SSH, the VMs in parallel and each VM's scripts in order. Quiet
//! on success with the default out-format, as Lago; with `-f json` (or any
//! other format) the scripts run per VM, with their exit codes and times.

use clap::{ArgMatches, Command};
use lago_plugin_api::spec::VmSpec;
use serde_json::{Map, Value};

use super::{Context, Output};
use crate::environment;
use crate::error::Error;
use crate::workflows::deploy::{deploy_vm, vm_scripts, DeployError, ScriptRun};
use crate::workflows::{combine_errors, in_parallel, is_unreachable, not_running};

pub fn command() -> Command {
    Command::new("deploy")
        .about("Run scripts that install necessary RPMs and configuration")
        .long_about(
            "Run each VM's deploy scripts (metadata: deploy-scripts in the init file, copied \
             into the prefix at init) over SSH: the VMs in parallel, the scripts of one VM in \
             order. A failing script fails the deploy, naming the VM, the script, its exit \
             code and the last lines of its output; every script's output is kept in the \
             prefix log (logs/lago.log).",
        )
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let structured = ctx.out_format() != "default";
    let env = environment::from_context(ctx)?;
    let mut work: Vec<(&VmSpec, Vec<std::path::PathBuf>)> = Vec::new();
    for vm in env.env.domains.values() {
        let scripts = vm_scripts(vm, &env.env.prefix)?;
        if !scripts.is_empty() {
            work.push((vm, scripts));
        }
    }
    let results = in_parallel(&work, |(vm, scripts)| -> Result<Vec<ScriptRun>, Error> {
        let target = env.ssh_ready(vm)?;
        match deploy_vm(env.ssh(), &target, scripts, None) {
            Ok(runs) => Ok(runs),
            Err(DeployError::Ssh { source, .. }) if is_unreachable(&source) => {
                Err(not_running(&env, vm).unwrap_or_else(|| {
                    Error::internal(format!("VM `{}`: {}", vm.name, source.chain_string()))
                }))
            }
            Err(e) => Err(e.into()),
        }
    });
    let mut done = Map::new();
    let mut errors = Vec::new();
    for ((vm, _), result) in work.iter().zip(results) {
        match result {
            Ok(Ok(runs)) => {
                done.insert(vm.name.clone(), serde_json::to_value(runs)?);
            }
            Ok(Err(e)) => errors.push(e),
            Err(panic) => errors.push(Error::internal(format!(
                "VM `{}`: deploy worker panicked: {panic}",
                vm.name
            ))),
        }
    }
    if !errors.is_empty() {
        return Err(combine_errors(errors));
    }
    Ok(if structured {
        Output::Data(Value::Object(done))
    } else {
        Output::Nothing
    })
}
