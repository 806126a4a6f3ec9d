//! One completion on the loaded model: the prompt rendered with the
//! model's chat template, evaluated after the longest prefix the KV cache
//! already holds, then decoded greedily (constrained by a grammar for JSON
//! answers) and streamed.
//!
//! The cache keeps several prompts at once, each in a *slot* (a llama.cpp
//! sequence of one unified KV cache). Nodes take turns on the one model —
//! an input node, an expert, an output node — and each sends the same
//! system prompt every time, so each finds its own prefix still cached
//! instead of the previous caller's. A request continues the slot that
//! shares the longest prefix with it when that keeps at least half of
//! what the slot holds; otherwise it takes the least recently used slot
//! and copies the shared prefix into it (cells are shared, not
//! re-evaluated). Slots are emptied, least recently used first, when the
//! cache's cells would not hold the request.

use std::sync::OnceLock;
use std::time::Instant;

use llama_cpp_2::DecodeError;
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
    /// The cached prompts; slot `i` is the cache's sequence `i`.
    slots: Vec<Slot>,
    /// Counts requests, to find the least recently used slot.
    clock: u64,
    model_id: String,
}

/// One sequence of the KV cache: the tokens whose keys and values it
/// holds, in order, and when a request last used it.
#[derive(Debug, Default, Clone)]
struct Slot {
    tokens: Vec<LlamaToken>,
    used: u64,
}

impl<'m> Inference<'m> {
    /// Inference on `model` in `ctx` (created with `slots` sequences and a
    /// unified KV cache), evaluating prompts `batch` tokens at a time, with
    /// an empty cache.
    pub(super) fn new(
        model: &'m LlamaModel,
        template: LlamaChatTemplate,
        ctx: LlamaContext<'m>,
        (batch, slots): (usize, usize),
        model_id: String,
    ) -> Self {
        Self {
            model,
            template,
            ctx,
            batch: LlamaBatch::new(batch, 1),
            slots: vec![Slot::default(); slots.max(1)],
            clock: 0,
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

        // Reuse the longest cached prefix; evaluate the rest in batches. At
        // least the last prompt token is evaluated so that its logits exist.
        let started = Instant::now();
        let (slot, keep) = self.prepare(&tokens, max_tokens);
        let seq = slot as i32;
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
                    .add(token, pos as i32, &[seq], is_last)
                    .map_err(|e| CapabilityError::Failed(format!("local model batch: {e}")))?;
            }
            self.decode(slot)?;
            self.slots[slot].tokens.extend_from_slice(chunk);
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
            let pos = self.slots[slot].tokens.len();
            self.batch
                .add(token, pos as i32, &[seq], true)
                .map_err(|e| CapabilityError::Failed(format!("local model batch: {e}")))?;
            self.decode(slot)?;
            self.slots[slot].tokens.push(token);
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

    /// Evaluates the batch on `slot`'s sequence. When the cache has no
    /// room (its cells fragmented by the other slots), the other slots are
    /// emptied and the batch is tried once more.
    fn decode(&mut self, slot: usize) -> Result<(), CapabilityError> {
        let mut result = self.ctx.decode(&mut self.batch);
        if result == Err(DecodeError::NoKvCacheSlot) && self.evict_all_but(slot) {
            result = self.ctx.decode(&mut self.batch);
        }
        result.map_err(|e| {
            // The cache no longer matches the slots: start afresh next time.
            self.forget_all();
            CapabilityError::Failed(format!("the local model failed to evaluate: {e}"))
        })
    }

    /// Picks the slot for a prompt of `tokens` that may generate
    /// `max_tokens` more, cuts it to the prefix it shares with the prompt
    /// and makes room in the cache; returns the slot and how many leading
    /// tokens need no evaluation.
    fn prepare(&mut self, tokens: &[LlamaToken], max_tokens: usize) -> (usize, usize) {
        self.clock += 1;
        // At least the last prompt token is evaluated, for its logits.
        let limit = tokens.len() - 1;
        let shared: Vec<usize> = self
            .slots
            .iter()
            .map(|s| common_prefix(&s.tokens, tokens).min(limit))
            .collect();
        let (best, &keep) = shared
            .iter()
            .enumerate()
            .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
            .unwrap_or((0, &0));
        let slot = if keep > 0
            && (keep * 2 >= self.slots[best].tokens.len() || self.slots.len() == 1)
        {
            best
        } else {
            // Continuing `best` would throw away most of what it holds (a
            // node's own prompt): take the least recently used slot.
            let lru = self.least_recently_used(|i| i != best);
            self.reset(lru);
            if keep > 0 && lru != best {
                let copied =
                    self.ctx
                        .copy_kv_cache_seq(best as i32, lru as i32, Some(0), Some(keep as u32));
                if copied.is_ok() {
                    self.slots[lru].tokens = self.slots[best].tokens[..keep].to_vec();
                }
            }
            lru
        };
        let keep = self.truncate(slot, keep.min(self.slots[slot].tokens.len()));
        self.slots[slot].used = self.clock;

        // Room for the rest of the prompt and the answer: an estimate that
        // counts shared cells once per slot, so it never undercounts.
        let cells = self.ctx.n_ctx() as usize;
        let needed = tokens.len() - keep + max_tokens;
        loop {
            let held: usize = self.slots.iter().map(|s| s.tokens.len()).sum();
            if held + needed <= cells {
                break;
            }
            let victim =
                self.least_recently_used(|i| i != slot && !self.slots[i].tokens.is_empty());
            if victim == slot {
                break; // only this slot holds anything, and it fits
            }
            self.reset(victim);
        }
        (slot, keep)
    }

    /// The least recently used slot among those `eligible` (slot 0 when
    /// none is).
    fn least_recently_used(&self, eligible: impl Fn(usize) -> bool) -> usize {
        (0..self.slots.len())
            .filter(|&i| eligible(i))
            .min_by_key(|&i| self.slots[i].used)
            .unwrap_or(0)
    }

    /// Drops `slot`'s cached tokens from position `keep` on and returns how
    /// many are kept: `keep`, or 0 when the cache could not be cut there.
    fn truncate(&mut self, slot: usize, keep: usize) -> usize {
        if keep == self.slots[slot].tokens.len() {
            return keep;
        }
        let removed = self
            .ctx
            .clear_kv_cache_seq(Some(slot as u32), Some(keep as u32), None)
            .unwrap_or(false);
        if removed {
            self.slots[slot].tokens.truncate(keep);
            keep
        } else {
            self.reset(slot);
            0
        }
    }

    /// Empties `slot`.
    fn reset(&mut self, slot: usize) {
        if !self.slots[slot].tokens.is_empty() {
            let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
            self.slots[slot].tokens.clear();
        }
    }

    /// Empties every slot but `keep`; false when none held anything.
    fn evict_all_but(&mut self, keep: usize) -> bool {
        let mut evicted = false;
        for slot in 0..self.slots.len() {
            if slot != keep && !self.slots[slot].tokens.is_empty() {
                self.reset(slot);
                evicted = true;
            }
        }
        evicted
    }

    /// Empties the whole cache.
    fn forget_all(&mut self) {
        self.ctx.clear_kv_cache();
        for slot in &mut self.slots {
            slot.tokens.clear();
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
