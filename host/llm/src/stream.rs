//! Assembling a streamed chat completion from its `data:` events.

use weft_runtime::CapabilityError;
use weft_runtime::capabilities::llm::Deltas;

use crate::wire::{ChatChunk, Usage, error_message, excerpt};

/// What a stream has delivered so far.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// The text so far (every delta, in order).
    pub text: String,
    /// Usage, from the chunk that carried it (normally the last).
    pub usage: Option<Usage>,
    /// The model the provider says answered.
    pub model: Option<String>,
    /// A choice reported a `finish_reason`.
    pub finished: bool,
    /// `data: [DONE]` arrived.
    pub done: bool,
}

impl StreamState {
    /// Handles the data of one event, forwarding new text to `deltas`.
    pub(crate) fn event(
        &mut self,
        provider: &str,
        data: &str,
        deltas: &dyn Deltas,
    ) -> Result<(), CapabilityError> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: ChatChunk = serde_json::from_str(data).map_err(|e| {
            CapabilityError::Failed(format!(
                "provider `{provider}` streamed a chunk that is not JSON ({e}): {}",
                excerpt(data)
            ))
        })?;
        if let Some(error) = chunk.error {
            // A failure reported mid-stream is usually overload; the caller
            // decides whether another backend may take over.
            return Err(CapabilityError::Unavailable(format!(
                "provider `{provider}` reported an error while streaming: {}",
                error_message(&serde_json::json!({ "error": error }).to_string())
            )));
        }
        if let Some(choice) = chunk.choices.first() {
            if let Some(content) = choice.delta.as_ref().and_then(|d| d.content.as_deref())
                && !content.is_empty()
            {
                deltas.delta(content);
                self.text.push_str(content);
            }
            self.finished |= choice.finish_reason.is_some();
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if chunk.model.is_some() {
            self.model = chunk.model;
        }
        Ok(())
    }

    /// Whether the stream delivered a whole answer.
    pub(crate) fn complete(&self) -> bool {
        self.done || self.finished
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);
    impl Deltas for Collect {
        fn delta(&self, text: &str) {
            self.0.lock().unwrap().push(text.to_owned());
        }
    }

    #[test]
    fn deltas_text_usage_and_done() {
        let collect = Collect::default();
        let mut s = StreamState::default();
        for data in [
            r#"{"model": "m1", "choices": [{"delta": {"role": "assistant", "content": ""}}]}"#,
            r#"{"choices": [{"delta": {"content": "Hel"}}]}"#,
            r#"{"choices": [{"delta": {"content": "lo"}, "finish_reason": null}]}"#,
            r#"{"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": null}"#,
            r#"{"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}"#,
        ] {
            s.event("p", data, &collect).unwrap();
        }
        assert!(s.finished && !s.done);
        s.event("p", "[DONE]", &collect).unwrap();
        assert!(s.done && s.complete());
        assert_eq!(*collect.0.lock().unwrap(), ["Hel", "lo"]);
        assert_eq!(s.text, "Hello");
        assert_eq!(s.model.as_deref(), Some("m1"));
        let usage = s.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (7, 2));
    }

    #[test]
    fn bad_chunks_and_stream_errors() {
        let mut s = StreamState::default();
        let bad = s.event("p", "{nope", &weft_runtime::capabilities::llm::NoDeltas);
        assert!(matches!(bad, Err(CapabilityError::Failed(m)) if m.contains("{nope")));
        let err = s.event(
            "p",
            r#"{"error": {"message": "overloaded"}}"#,
            &weft_runtime::capabilities::llm::NoDeltas,
        );
        assert!(matches!(err, Err(CapabilityError::Unavailable(m)) if m.contains("overloaded")));
        assert!(!s.complete());
    }
}
