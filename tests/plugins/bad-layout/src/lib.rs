//! A library with lago's root module name and this interface version, but
//! another layout (as if built from a modified lago-plugin-api): lago must
//! refuse it with one warning and carry on.

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = LagoPluginRef)))]
#[sabi(missing_field(panic))]
pub struct LagoPlugin {
    pub init: extern "C" fn(u64) -> u64,
    #[sabi(last_prefix_field)]
    pub plugins: extern "C" fn() -> u32,
}

impl RootModule for LagoPluginRef {
    declare_root_module_statics! {LagoPluginRef}
    const BASE_NAME: &'static str = "lago_plugin";
    const NAME: &'static str = "lago_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(lago_plugin_api::INTERFACE_VERSION);
}

extern "C" fn init(x: u64) -> u64 {
    x
}

extern "C" fn plugins() -> u32 {
    0
}

#[export_root_module]
pub fn root() -> LagoPluginRef {
    LagoPlugin { init, plugins }.leak_into_prefix()
}
