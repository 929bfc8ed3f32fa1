//! The `corsair` command. Subcommands arrive one module at a time.

use clap::Parser;

/// Cross-Origin Resource Sharing, both sides, as browsers do it.
#[derive(Parser, Debug)]
#[command(name = "corsair", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
