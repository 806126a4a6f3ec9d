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
//! The context keeps the previous prompt's KV cache: a request that shares
//! a prefix with the one before (same system prompt and examples, as a
//! node's calls usually do) only evaluates the tokens after it.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde::Deserialize;
use tokio::sync::mpsc;
use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest, Role};

use crate::error::LlmError;
use crate::{CallReport, UsageSource};

/// The command that downloads the default model, named in load errors.
pub const FETCH_COMMAND: &str = "cargo xtask fetch-model";

/// Settings of the embedded provider (`kind: local` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Longest time a request may take, queueing included.
    #[serde(rename = "timeout_ms", with = "crate::config::millis")]
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

/// One request handed to the worker.
struct Job {
    request: CompletionRequest,
    queued_at: Instant,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
}

/// What the worker sends back while it works on a [`Job`].
enum Event {
    Delta(String),
    Done(Result<(Completion, Timings), CapabilityError>),
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
        if config.threads == 0 || config.context < 64 || config.batch == 0 || config.queue == 0 {
            return Err(LlmError::InvalidConfig {
                provider: config.name.clone(),
                reason: "threads, batch and queue must be at least 1 and context at least 64"
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

/// The llama.cpp backend, initialised once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The inference thread: loads the model, reports, then serves jobs until
/// the provider is dropped.
fn worker(
    config: LocalConfig,
    jobs: std_mpsc::Receiver<Job>,
    ready: std_mpsc::Sender<Result<ModelInfo, String>>,
) {
    let started = Instant::now();
    let loaded = (|| {
        let backend = backend()?;
        let model = LlamaModel::load_from_file(backend, &config.path, &LlamaModelParams::default())
            .map_err(|e| {
                format!("llama.cpp cannot load it ({e}); the file may be corrupt or of an unsupported architecture: `{FETCH_COMMAND}` downloads the default model")
            })?;
        let template = model
            .chat_template(None)
            .map_err(|e| format!("the model has no usable chat template: {e}"))?;
        Ok::<_, String>((backend, model, template))
    })();
    let (backend, model, template) = match loaded {
        Ok(loaded) => loaded,
        Err(reason) => {
            let _ = ready.send(Err(reason));
            return;
        }
    };
    let context = config.context.min(model.n_ctx_train().max(64));
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(context))
        .with_n_batch(config.batch)
        .with_n_ubatch(config.batch)
        .with_n_threads(config.threads as i32)
        .with_n_threads_batch(config.threads as i32);
    let ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot create an inference context: {e}")));
            return;
        }
    };
    let model_id = if config.model.is_empty() {
        config
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".to_owned())
    } else {
        config.model.clone()
    };
    let info = ModelInfo {
        model: model_id.clone(),
        path: config.path.clone(),
        size: model.size(),
        params: model.n_params(),
        load_time: started.elapsed(),
        context,
        threads: config.threads,
    };
    if ready.send(Ok(info)).is_err() {
        return;
    }
    let mut engine = Inference {
        model: &model,
        template,
        ctx,
        batch: LlamaBatch::new(config.batch as usize, 1),
        cached: Vec::new(),
        model_id,
    };
    while let Ok(job) = jobs.recv() {
        let queued = job.queued_at.elapsed();
        if job.events.is_closed() {
            continue; // the caller gave up while the job waited
        }
        let result = if Instant::now() >= job.deadline {
            Err(timed_out(&engine.model_id, queued))
        } else {
            engine.run(&job).map(|(completion, mut timings)| {
                timings.queued = queued;
                (completion, timings)
            })
        };
        let _ = job.events.send(Event::Done(result));
    }
}

fn timed_out(model: &str, after: Duration) -> CapabilityError {
    CapabilityError::Unavailable(format!(
        "the local model `{model}` did not answer within the timeout ({})",
        crate::fmt_duration(Duration::from_millis(after.as_millis() as u64))
    ))
}

/// The model, its context and what the context's KV cache holds.
struct Inference<'m> {
    model: &'m LlamaModel,
    template: LlamaChatTemplate,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<LlamaToken>,
    model_id: String,
}

impl Inference<'_> {
    fn run(&mut self, job: &Job) -> Result<(Completion, Timings), CapabilityError> {
        let request = &job.request;
        let prompt = self.render(request)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        let n_ctx = self.ctx.n_ctx() as usize;
        let max_tokens = request.max_tokens.max(1) as usize;
        if tokens.len() + max_tokens > n_ctx {
            return Err(CapabilityError::InvalidInput(format!(
                "the prompt is {} tokens and max_tokens {max_tokens}: more than the local model's context of {n_ctx} tokens",
                tokens.len()
            )));
        }
        let mut sampler = self.sampler(request)?;
        let mut timings = Timings::default();

        // Reuse the cached prefix; evaluate the rest in batches. At least
        // the last prompt token is evaluated so that its logits exist.
        let started = Instant::now();
        let keep = self.truncate_cache(common_prefix(&self.cached, &tokens).min(tokens.len() - 1));
        let mut last = 0;
        for (chunk_index, chunk) in tokens[keep..].chunks(self.batch_capacity()).enumerate() {
            if Instant::now() >= job.deadline || job.events.is_closed() {
                return Err(timed_out(&self.model_id, job.queued_at.elapsed()));
            }
            self.batch.clear();
            let base = keep + chunk_index * self.batch_capacity();
            for (i, &token) in chunk.iter().enumerate() {
                let pos = base + i;
                let is_last = pos + 1 == tokens.len();
                self.batch
                    .add(token, pos as i32, &[0], is_last)
                    .map_err(|e| CapabilityError::Failed(format!("local model batch: {e}")))?;
            }
            self.decode()?;
            self.cached.extend_from_slice(chunk);
            last = self.batch.n_tokens() - 1;
        }
        timings.prompt_evaluated = (tokens.len() - keep) as u32;
        timings.prompt = started.elapsed();

        // Generate greedily, streaming whole UTF-8 characters.
        let started = Instant::now();
        let vocab = self.model.vocab();
        let mut bytes: Vec<u8> = Vec::new();
        let mut streamed = 0;
        let mut generated = 0u32;
        while (generated as usize) < max_tokens {
            if Instant::now() >= job.deadline {
                return Err(timed_out(&self.model_id, job.queued_at.elapsed()));
            }
            if job.events.is_closed() {
                return Err(CapabilityError::Unavailable(
                    "the caller gave up".to_owned(),
                ));
            }
            // `sample` also accepts the token into the sampler's state.
            let token = sampler.sample(&self.ctx, last);
            if vocab.is_eog(token) {
                break;
            }
            generated += 1;
            vocab.token_to_piece_into(token, &mut bytes, false, None);
            if request.stream {
                let ready = utf8_prefix(&bytes[streamed..]);
                if ready > 0 {
                    let text = String::from_utf8_lossy(&bytes[streamed..streamed + ready]);
                    let _ = job.events.send(Event::Delta(text.into_owned()));
                    streamed += ready;
                }
            }
            self.batch.clear();
            let pos = self.cached.len();
            self.batch
                .add(token, pos as i32, &[0], true)
                .map_err(|e| CapabilityError::Failed(format!("local model batch: {e}")))?;
            self.decode()?;
            self.cached.push(token);
            last = 0;
        }
        timings.generated = generated;
        timings.generation = started.elapsed();
        if request.stream && streamed < bytes.len() {
            let rest = String::from_utf8_lossy(&bytes[streamed..]).into_owned();
            let _ = job.events.send(Event::Delta(rest));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let completion = Completion {
            text,
            prompt_tokens: tokens.len() as u32,
            completion_tokens: generated,
            model: self.model_id.clone(),
            provider: String::new(),
            usage_estimated: false,
        };
        Ok((completion, timings))
    }

    /// The prompt in the model's chat template, ready for the answer.
    fn render(&self, request: &CompletionRequest) -> Result<String, CapabilityError> {
        if request.messages.is_empty() {
            return Err(CapabilityError::InvalidInput(
                "a completion needs at least one message".to_owned(),
            ));
        }
        let messages = request
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                LlamaChatMessage::new(role.to_owned(), m.content.clone()).map_err(|_| {
                    CapabilityError::InvalidInput("a message contains a NUL character".to_owned())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.model
            .apply_chat_template(&self.template, &messages, true)
            .map_err(|e| CapabilityError::Failed(format!("cannot apply the chat template: {e}")))
    }

    /// Greedy decoding, constrained by the request's JSON Schema if any.
    fn sampler(&self, request: &CompletionRequest) -> Result<LlamaSampler, CapabilityError> {
        let Some(schema) = &request.json_schema else {
            // A mild, deterministic penalty on the last 64 tokens: small
            // models otherwise fall into repeating a sentence until
            // max_tokens.
            return Ok(LlamaSampler::chain_simple([
                LlamaSampler::penalties(self.model.n_vocab(), 64, 1.15, 0.0, 0.0),
                LlamaSampler::greedy(),
            ]));
        };
        let grammar = grammar_for(schema)?;
        let constrained = LlamaSampler::grammar(self.model, &grammar, "root").map_err(|e| {
            CapabilityError::InvalidInput(format!(
                "the JSON Schema's grammar was refused by llama.cpp: {e}"
            ))
        })?;
        Ok(LlamaSampler::chain_simple([
            constrained,
            LlamaSampler::greedy(),
        ]))
    }

    fn batch_capacity(&self) -> usize {
        self.ctx.n_batch() as usize
    }

    fn decode(&mut self) -> Result<(), CapabilityError> {
        self.ctx.decode(&mut self.batch).map_err(|e| {
            // The cache no longer matches `cached`: start afresh next time.
            self.cached.clear();
            self.ctx.clear_kv_cache();
            CapabilityError::Failed(format!("the local model failed to evaluate: {e}"))
        })
    }

    /// Drops cached tokens from position `keep` on and returns how many
    /// are kept: `keep`, or 0 when the cache could not be cut there.
    fn truncate_cache(&mut self, keep: usize) -> usize {
        if keep == self.cached.len() {
            return keep;
        }
        let removed = self
            .ctx
            .clear_kv_cache_seq(Some(0), Some(keep as u32), None)
            .unwrap_or(false);
        if removed {
            self.cached.truncate(keep);
            keep
        } else {
            self.ctx.clear_kv_cache();
            self.cached.clear();
            0
        }
    }
}

/// A llama.cpp grammar for a JSON Schema, cached per schema text (nodes
/// send the same few schemas over and over).
fn grammar_for(schema: &str) -> Result<String, CapabilityError> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(grammar) = cache.lock().expect("grammar cache").get(schema) {
        return Ok(grammar.clone());
    }
    let grammar = llama_cpp_2::json_schema_to_grammar(schema).map_err(|e| {
        CapabilityError::InvalidInput(format!(
            "the JSON Schema cannot be turned into a grammar: {e}"
        ))
    })?;
    let mut cache = cache.lock().expect("grammar cache");
    if cache.len() >= 256 {
        cache.clear();
    }
    cache.insert(schema.to_owned(), grammar.clone());
    Ok(grammar)
}

/// How many leading tokens `a` and `b` share.
fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The length of the longest prefix of `bytes` that ends on a character
/// boundary (an incomplete trailing UTF-8 sequence waits for more bytes).
fn utf8_prefix(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        // Invalid bytes will never complete: pass them on (lossily).
        Err(_) => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_prefix_holds_back_incomplete_characters() {
        let euro = "€".as_bytes();
        assert_eq!(utf8_prefix(b"abc"), 3);
        assert_eq!(utf8_prefix(&euro[..2]), 0);
        assert_eq!(utf8_prefix(&[b'a', euro[0]]), 1);
        assert_eq!(utf8_prefix(&[0xff, b'a']), 2);
    }

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
