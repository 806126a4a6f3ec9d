//! The inference thread: it loads the model, then answers the jobs the
//! provider queues, one at a time, until the provider is dropped.

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use tokio::sync::mpsc;
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

use super::inference::Inference;
use super::{FETCH_COMMAND, LocalConfig, ModelInfo, Timings};

/// One request handed to the worker.
pub(super) struct Job {
    pub(super) request: CompletionRequest,
    pub(super) queued_at: Instant,
    pub(super) deadline: Instant,
    pub(super) events: mpsc::UnboundedSender<Event>,
}

/// What the worker sends back while it works on a [`Job`].
pub(super) enum Event {
    /// Streamed text.
    Delta(String),
    /// The answer and its timings, or why there is none.
    Done(Result<(Completion, Timings), CapabilityError>),
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
pub(super) fn worker(
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
        .with_n_threads_batch(config.threads as i32)
        .with_n_seq_max(config.cache_slots)
        .with_kv_unified(true);
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
    let mut engine = Inference::new(
        &model,
        template,
        ctx,
        (config.batch as usize, config.cache_slots as usize),
        model_id,
    );
    while let Ok(job) = jobs.recv() {
        let queued = job.queued_at.elapsed();
        if job.events.is_closed() {
            continue; // the caller gave up while the job waited
        }
        let result = if Instant::now() >= job.deadline {
            Err(timed_out(engine.model_id(), queued))
        } else {
            engine.run(&job).map(|(completion, mut timings)| {
                timings.queued = queued;
                (completion, timings)
            })
        };
        let _ = job.events.send(Event::Done(result));
    }
}

/// The error of a request that ran out of time after `after`.
pub(super) fn timed_out(model: &str, after: Duration) -> CapabilityError {
    CapabilityError::Unavailable(format!(
        "the local model `{model}` did not answer within the timeout ({})",
        crate::fmt_duration(Duration::from_millis(after.as_millis() as u64))
    ))
}
