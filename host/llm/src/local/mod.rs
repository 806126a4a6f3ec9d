//! The embedded provider: a GGUF model run in-process on the CPU by
//! llama.cpp (through `llama-cpp-2`), offline.
//!
//! One worker thread owns the model and one context, so inference never
//! runs on the async executor. Requests wait in a bounded queue; when it is
//! full a call fails at once with `unavailable` instead of piling up. Each
//! request is rendered with the model's own chat template, decoded greedily
//! (reproducible at a fixed thread count; free text with a mild repetition
//! penalty), optionally constrained by a
//! grammar compiled from the request's JSON Schema, and streamed token by
//! token. Token counts are exact: they are the tokens the model read and
//! wrote.
//!
//! The context's KV cache keeps several recent prompts (`cache_slots`): a
//! request that shares a prefix with one of them (the same system prompt
//! and examples, as a node's calls usually do, even when other nodes
//! called in between) only evaluates the tokens after it.
//!
//! The provider ([`LocalProvider`], here) hands each request to the worker
//! thread (`worker`), which owns the model and runs it (`inference`).

mod inference;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

use crate::error::LlmError;
use crate::{CallReport, UsageSource};
use worker::{Event, Job, worker};

/// The command that downloads the default model, named in load errors.
pub const FETCH_COMMAND: &str = "cargo xtask fetch-model";

/// Settings of the embedded provider (`kind: local` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// The provider's name in logs and usage events.
    pub name: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// The model id reported in completions; the file stem when empty.
    pub model: String,
    /// CPU threads for inference. More than one thread only pays on an
    /// otherwise idle machine with that many free cores.
    pub threads: u32,
    /// Context length in tokens (prompt plus answer).
    pub context: u32,
    /// Tokens evaluated per batch while reading the prompt.
    pub batch: u32,
    /// Requests that may wait for the model; more are refused.
    pub queue: usize,
    /// Prompts the KV cache keeps at once (1 to 64), so that nodes taking
    /// turns each find their own system prompt still evaluated. They share
    /// the `context`'s cells; the least recently used is dropped when a
    /// request needs the room.
    pub cache_slots: u32,
    /// Longest time a request may take, queueing included.
    #[serde(rename = "timeout_ms", with = "crate::config::millis")]
    #[schemars(with = "u64")]
    pub timeout: Duration,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            name: "local".to_owned(),
            path: PathBuf::from("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            model: String::new(),
            threads: 1,
            context: 4096,
            batch: 512,
            queue: 16,
            cache_slots: 8,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What loading the model cost, for `weft bench llm` and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The model id reported in completions.
    pub model: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// File size in bytes.
    pub size: u64,
    /// Parameters.
    pub params: u64,
    /// Time to load the file and create the context.
    pub load_time: Duration,
    /// Context length in tokens.
    pub context: u32,
    /// Inference threads.
    pub threads: u32,
}

/// Where the time of one local completion went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// Waiting in the queue.
    pub queued: Duration,
    /// Prompt tokens evaluated (those not already in the cache).
    pub prompt_evaluated: u32,
    /// Time to evaluate them.
    pub prompt: Duration,
    /// Tokens generated.
    pub generated: u32,
    /// Time to generate them.
    pub generation: Duration,
}

/// The embedded llama.cpp provider; see the [module docs](self).
pub struct LocalProvider {
    name: String,
    jobs: std_mpsc::SyncSender<Job>,
    queue: usize,
    timeout: Duration,
    info: ModelInfo,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("name", &self.name)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl LocalProvider {
    /// Loads the model and starts its worker thread. Blocks for the load
    /// (a fraction of a second for small models); call it before serving or
    /// from a blocking task.
    pub fn load(config: LocalConfig) -> Result<Self, LlmError> {
        let fail = |reason: String| LlmError::Model {
            path: config.path.clone(),
            reason,
        };
        check_gguf(&config.path).map_err(fail)?;
        if config.threads == 0
            || config.context < 64
            || config.batch == 0
            || config.queue == 0
            || !(1..=64).contains(&config.cache_slots)
        {
            return Err(LlmError::InvalidConfig {
                provider: config.name.clone(),
                reason: "threads, batch and queue must be at least 1, context at least 64 and cache_slots 1 to 64"
                    .to_owned(),
            });
        }
        let (jobs, receiver) = std_mpsc::sync_channel::<Job>(config.queue);
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let worker_config = config.clone();
        std::thread::Builder::new()
            .name(format!("llm-{}", config.name))
            .spawn(move || worker(worker_config, receiver, ready_tx))
            .map_err(|e| fail(format!("cannot start the inference thread: {e}")))?;
        let info = ready_rx
            .recv()
            .map_err(|_| fail("the inference thread stopped while loading".to_owned()))?
            .map_err(fail)?;
        tracing::info!(
            provider = %config.name,
            model = %info.model,
            params = info.params,
            load_ms = info.load_time.as_millis() as u64,
            threads = info.threads,
            "local model loaded"
        );
        Ok(Self {
            name: config.name,
            jobs,
            queue: config.queue,
            timeout: config.timeout,
            info,
        })
    }

    /// The loaded model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Answers `request`, sending streamed text to `call.deltas`, and says
    /// where the time went.
    pub async fn complete_timed(
        &self,
        call: LlmCall<'_>,
        request: CompletionRequest,
    ) -> Result<(Completion, CallReport, Timings), CapabilityError> {
        let started = Instant::now();
        let (events, mut receiver) = mpsc::unbounded_channel();
        let job = Job {
            request,
            queued_at: started,
            deadline: started + self.timeout,
            events,
        };
        self.jobs.try_send(job).map_err(|error| match error {
            std_mpsc::TrySendError::Full(_) => CapabilityError::Unavailable(format!(
                "the local model `{}` is busy: {} requests are already waiting",
                self.info.model, self.queue
            )),
            std_mpsc::TrySendError::Disconnected(_) => CapabilityError::Unavailable(format!(
                "the local model `{}` has stopped",
                self.info.model
            )),
        })?;
        let (mut completion, timings) = loop {
            match receiver.recv().await {
                Some(Event::Delta(text)) => call.deltas.delta(&text),
                Some(Event::Done(result)) => break result?,
                None => {
                    return Err(CapabilityError::Failed(format!(
                        "the local model `{}` stopped during the request",
                        self.info.model
                    )));
                }
            }
        };
        completion.provider = self.name.clone();
        tracing::debug!(
            provider = %self.name,
            node = %call.ctx.node,
            queued_ms = timings.queued.as_millis() as u64,
            prompt_tokens = completion.prompt_tokens,
            prompt_evaluated = timings.prompt_evaluated,
            prompt_ms = timings.prompt.as_millis() as u64,
            generated = timings.generated,
            generation_ms = timings.generation.as_millis() as u64,
            "local completion"
        );
        let report = CallReport {
            provider: self.name.clone(),
            model: completion.model.clone(),
            usage: UsageSource::Reported,
            attempts: 1,
            latency: started.elapsed(),
        };
        Ok((completion, report, timings))
    }
}

impl LlmBackend for LocalProvider {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async move {
            self.complete_timed(call, request)
                .await
                .map(|(completion, _, _)| completion)
        })
    }
}

/// Refuses a missing, unreadable or non-GGUF file before llama.cpp sees it.
fn check_gguf(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("the model file does not exist; `{FETCH_COMMAND}` downloads the default model")
        } else {
            format!("cannot open the model file: {e}")
        }
    })?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(|_| {
        format!("the file is too short to be a GGUF model; `{FETCH_COMMAND}` downloads it again")
    })?;
    if &magic != b"GGUF" {
        return Err(format!(
            "not a GGUF model (it starts with {magic:?}, not \"GGUF\"); `{FETCH_COMMAND}` downloads the default model"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_foreign_files_are_refused_with_the_fetch_command() {
        let dir = std::env::temp_dir().join(format!("weft-gguf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = check_gguf(&dir.join("absent.gguf")).unwrap_err();
        assert!(missing.contains("does not exist") && missing.contains(FETCH_COMMAND));
        let foreign = dir.join("foreign.gguf");
        std::fs::write(&foreign, b"PK\x03\x04 a zip, not a model").unwrap();
        let error = check_gguf(&foreign).unwrap_err();
        assert!(error.contains("not a GGUF model"), "{error}");
        let short = dir.join("short.gguf");
        std::fs::write(&short, b"GG").unwrap();
        assert!(check_gguf(&short).unwrap_err().contains("too short"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
