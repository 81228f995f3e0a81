//! `lago status`: the stored environment in Lago's shape, with each VM's and
//! network's state as its provider reports it.

use clap::{ArgMatches, Command};
use lago_plugin_api::spec::EnvSpec;

use super::{Context, Output};
use crate::environment::{Environment, SshSettings};
use crate::error::Error;
use crate::prefix::lifecycle::{status_tree, stored_states, States};

pub fn command() -> Command {
    Command::new("status").about("Show status of the deployed virtual resources")
}

pub fn run(ctx: &mut Context, _args: &ArgMatches) -> Result<Output, Error> {
    let prefix = ctx.prefix()?;
    prefix.require_initialized()?;
    let env = prefix.load_env()?;
    let states = match provider_states(ctx, &env) {
        Ok(s) => s,
        Err(e) => {
            // The stored state is still worth showing; the states are not known.
            tracing::warn!("cannot ask the providers for the states: {e}");
            let mut s = stored_states(&env);
            s.vms.values_mut().for_each(|v| *v = "unknown".into());
            s.nets.values_mut().for_each(|v| *v = "unknown".into());
            s
        }
    };
    Ok(Output::Data(status_tree(&env, &states)))
}

/// THE STATUS HOOK: each VM's and network's state from its provider.
/// [`stored_states`] (everything `down`) is the answer without one.
fn provider_states(ctx: &mut Context, env: &EnvSpec) -> Result<States, Error> {
    let settings = SshSettings::from_config(&ctx.config)?;
    let registry = ctx.plugins()?;
    Environment::open(env.clone(), registry, settings)?.states()
}
