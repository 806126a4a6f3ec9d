//! One completion on the loaded model: the prompt rendered with the
//! model's chat template, evaluated after the cached prefix, then decoded
//! greedily (constrained by a grammar for JSON answers) and streamed.

use std::sync::OnceLock;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use weft_runtime::{CapabilityError, Completion, CompletionRequest, Role};

use super::Timings;
use super::worker::{Event, Job, timed_out};

/// The model, its context and what the context's KV cache holds.
pub(super) struct Inference<'m> {
    model: &'m LlamaModel,
    template: LlamaChatTemplate,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<LlamaToken>,
    model_id: String,
}

impl<'m> Inference<'m> {
    /// Inference on `model` in `ctx`, evaluating prompts `batch` tokens at
    /// a time, with an empty cache.
    pub(super) fn new(
        model: &'m LlamaModel,
        template: LlamaChatTemplate,
        ctx: LlamaContext<'m>,
        batch: usize,
        model_id: String,
    ) -> Self {
        Self {
            model,
            template,
            ctx,
            batch: LlamaBatch::new(batch, 1),
            cached: Vec::new(),
            model_id,
        }
    }

    /// The model id reported in completions.
    pub(super) fn model_id(&self) -> &str {
        &self.model_id
    }
}

impl Inference<'_> {
    /// Answers `job`'s request, streaming its text to the job's events.
    pub(super) fn run(&mut self, job: &Job) -> Result<(Completion, Timings), CapabilityError> {
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
    use std::sync::{Mutex, PoisonError};
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(grammar) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(schema)
    {
        return Ok(grammar.clone());
    }
    let grammar = llama_cpp_2::json_schema_to_grammar(schema).map_err(|e| {
        CapabilityError::InvalidInput(format!(
            "the JSON Schema cannot be turned into a grammar: {e}"
        ))
    })?;
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
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
}
