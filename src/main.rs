//! The `t-minus` command line: parse arguments, call the library, render.

mod cli;

fn main() -> std::process::ExitCode {
    restore_sigpipe();
    cli::main()
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`t-minus status |
/// head`) would fail with a panic. Restore the default action instead: the
/// process ends quietly, as Unix tools do.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists;
    // setting a signal's disposition to its default has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}
