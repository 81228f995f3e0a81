//! `lagocli`: Lago's other name for `lago`, the same program.

fn main() {
    std::process::exit(lago::cli::main_with_args(std::env::args_os().collect()));
}
