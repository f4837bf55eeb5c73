//! The `t-minus` command line: parse arguments, call the library, render.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
