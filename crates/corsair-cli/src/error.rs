//! How a subcommand ends: what it found (exit status 0 or 1), or why it could not do its job
//! (exit status 2). `main` turns these into exit codes and nothing else.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use crate::net::NetError;

/// What a subcommand found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed (`check`), clean (`lint`), or stopped as asked (`proxy`): exit status 0.
    Pass,
    /// Blocked (`check`) or problems found (`lint`): exit status 1.
    Fail,
}

/// Why a subcommand could not do its job: exit status 2, one line on standard error.
#[derive(Debug)]
pub enum Error {
    /// Arguments that cannot work; the message says what to type instead.
    Usage(String),
    /// The network failed.
    Net(NetError),
    /// A file or a policy that cannot be used.
    Config(String),
    /// The system refused something: a port to listen on, a signal handler, the runtime.
    System(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Config(m) | Error::System(m) => f.write_str(m),
            Error::Net(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Net(e) => Some(e),
            _ => None,
        }
    }
}

impl From<NetError> for Error {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Invalid(m) => Error::Usage(m),
            other => Error::Net(other),
        }
    }
}

/// The exit code of a subcommand's result, printing the error on standard error.
pub fn exit_code(result: Result<Verdict, Error>) -> ExitCode {
    match result {
        Ok(Verdict::Pass) => ExitCode::SUCCESS,
        Ok(Verdict::Fail) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The longest any timeout may be: one day. Longer values are taken as one day.
pub const MAX_SECONDS: f64 = 86_400.0;

/// Parses a positive number of seconds (a flag's value), capped at [`MAX_SECONDS`].
///
/// # Errors
/// Zero, a negative number, or something that is not a number.
pub fn seconds(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Duration::from_secs_f64(v.min(MAX_SECONDS))),
        _ => Err(format!(
            "{s:?} is not a positive number of seconds, such as 10 or 0.5"
        )),
    }
}

/// An async runtime: one thread for a client, all cores for a server.
///
/// # Errors
/// When the system refuses the threads or the I/O driver.
pub fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Error> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| Error::System(format!("cannot start the async runtime: {e}")))
}
