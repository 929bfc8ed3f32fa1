//! The `corsair` command's subcommands, one module each, thin over the `corsair` library.
//! `main.rs` only parses arguments and turns results into exit codes.

pub mod audit;
pub mod check;
pub mod demo;
pub mod error;
pub mod lint;
pub mod net;
pub mod proxy;
