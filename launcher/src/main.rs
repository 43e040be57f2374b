//! cordon-launcher: builds the sandbox and runs one command in it.
//! See launcher/FLAGS.md and ../DESIGN (docs/architecture.md) for the contract.

mod args;

use std::process::exit;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args::parse(argv) {
        Ok(args::Command::Version) => println!("cordon-launcher {}", env!("CARGO_PKG_VERSION")),
        Ok(args::Command::Help) => print!("{}", args::HELP),
        Ok(_) => {
            eprintln!("cordon-launcher: not built yet");
            exit(125);
        }
        Err(e) => {
            eprintln!("cordon-launcher: {}\n{}", e.0, args::USAGE);
            exit(125);
        }
    }
}
