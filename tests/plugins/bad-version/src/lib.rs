//! A library that claims to be a lago plugin built against interface
//! 99.0.0: lago must refuse it with one warning and carry on.

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, std_types::RString, StableAbi,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = FutureLagoPluginRef)))]
#[sabi(missing_field(panic))]
pub struct FutureLagoPlugin {
    #[sabi(last_prefix_field)]
    pub hello: extern "C" fn() -> RString,
}

impl RootModule for FutureLagoPluginRef {
    declare_root_module_statics! {FutureLagoPluginRef}
    const BASE_NAME: &'static str = "lago_plugin";
    const NAME: &'static str = "lago_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("99.0.0");
}

extern "C" fn hello() -> RString {
    "from the future".into()
}

#[export_root_module]
pub fn root() -> FutureLagoPluginRef {
    FutureLagoPlugin { hello }.leak_into_prefix()
}
