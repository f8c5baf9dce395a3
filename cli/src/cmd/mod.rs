//! One module per subcommand: each has clap `Args` and a `run(Args) -> Result<(), CliError>`.

pub mod bootstrap;
pub mod call;
pub mod config_dump;
pub mod control_plane;
pub mod demo;
pub mod new;

/// A failed command: the message printed after `skiff: `.
pub type CliError = Box<dyn std::error::Error>;
