//! What the subcommands share: a failure with the exit code it gets, and
//! how a subcommand answers `--help` and reports a failure.
use std::process::ExitCode;

/// What failed, and the exit code it gets.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// A usage error (exit 2): said with the subcommand's usage text.
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: format!("usage: {}", message.into()),
        }
    }

    /// Any other error that stops the command (exit 2).
    pub(crate) fn fatal(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

/// Runs the subcommand `name` with `args` (those after its name): `--help`
/// prints `usage`; a failure is said on stderr, with `usage` after a usage
/// error, and exits with its code.
pub(crate) fn run_subcommand(
    name: &str,
    usage: &str,
    args: &[String],
    run: impl FnOnce(&[String]) -> Result<ExitCode, Failure>,
) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("crashbox {name}: {}", failure.message);
            if failure.code == 2 && failure.message.starts_with("usage") {
                eprintln!("\n{usage}");
            }
            ExitCode::from(failure.code)
        }
    }
}
