//! The `lago` binary (also `lagocli`): everything lives in the library.

fn main() {
    std::process::exit(lago::cli::main_with_args(std::env::args_os().collect()));
}
