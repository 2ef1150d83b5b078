//! The error `init` returns.

/// Why [`init`](crate::init) refused to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A client is already installed; drop its [`Guard`](crate::Guard) first.
    #[error("crashbox is already initialized: drop the existing Guard before calling init again")]
    AlreadyInitialized,
    /// The collector string could not be parsed.
    #[error("invalid collector `{collector}`: {reason}")]
    InvalidCollector {
        /// The collector string, with any credentials masked.
        collector: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option has a value crashbox cannot work with.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's builder method name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The background worker thread could not be started.
    #[error("could not start the crashbox worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}
