//! Errors building a provider. Errors of a call travel as
//! [`CapabilityError`](weft_runtime::CapabilityError), which the node sees.

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// `api_key_env` names an environment variable that is not set (or is
    /// not valid Unicode).
    #[error("provider `{provider}`: the API key variable `{var}` is not set")]
    MissingApiKey {
        /// The provider's name.
        provider: String,
        /// The variable named by `api_key_env`.
        var: String,
    },
    /// A setting is unusable (bad URL, zero timeout, key with control
    /// characters, ...).
    #[error("provider `{provider}`: {reason}")]
    InvalidConfig {
        /// The provider's name.
        provider: String,
        /// What is wrong.
        reason: String,
    },
    /// The local model cannot be loaded: the file is missing, not a GGUF
    /// model, corrupt or of an unsupported architecture.
    #[error("model {}: {reason}", path.display())]
    Model {
        /// The configured GGUF file.
        path: std::path::PathBuf,
        /// What is wrong, with the command that fetches the default model
        /// where that helps.
        reason: String,
    },
    /// The HTTP client could not be created (e.g. no TLS roots).
    #[error("provider `{provider}`: cannot create the HTTP client: {source}")]
    Client {
        /// The provider's name.
        provider: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
}
