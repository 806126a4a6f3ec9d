//! A streamed answer: server-sent `chat.completion.chunk`s with the text
//! the run's nodes stream (the engine's `streaming` events, as the chat
//! socket gets them; progress lines are not part of the answer), a last
//! chunk with the `finish_reason`, the usage chunk when asked for, and
//! `data: [DONE]`. An error after the stream began is one
//! `data: {"error": {…}}` event, and the stream ends without `[DONE]`.
//!
//! The pieces add up to the answer a non-streaming request gets (the
//! run's reply, trimmed): leading whitespace is dropped and trailing
//! whitespace held back until more text follows, and whatever of the
//! reply was not streamed comes before the last chunk. A graph may
//! replace the text it streamed (the assistant's output node does when
//! the model's reply fails its checks); the stream then goes on with a
//! blank line and the reply.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use serde::Serialize;

use super::answer::{Chunk, Delta, Usage, reply};
use super::run::{Step, Watch, finish_reason};

/// The text sent so far, kept so that the pieces add up to the reply.
#[derive(Debug, Default)]
pub(crate) struct Text {
    sent: String,
    held: String,
}

impl Text {
    /// What to send of a streamed piece, if anything.
    pub fn push(&mut self, delta: &str) -> Option<String> {
        let delta = if self.sent.is_empty() {
            delta.trim_start()
        } else {
            delta
        };
        if delta.is_empty() {
            return None;
        }
        let mut out = std::mem::take(&mut self.held);
        out.push_str(delta);
        let kept = out.trim_end().len();
        self.held = out.split_off(kept);
        if out.is_empty() {
            return None;
        }
        self.sent.push_str(&out);
        Some(out)
    }

    /// What must follow for the client's text to be `reply`: the rest of
    /// it when what was sent is its beginning, else (the graph replaced
    /// what it streamed) a blank line and the whole reply.
    pub fn rest(&self, reply: &str) -> String {
        match reply.strip_prefix(self.sent.as_str()) {
            Some(rest) => rest.to_owned(),
            None if reply.is_empty() => String::new(),
            None => format!("\n\n{reply}"),
        }
    }
}

enum Phase {
    Start,
    Running,
    Done,
}

struct State {
    watch: Watch,
    include_usage: bool,
    text: Text,
    queue: VecDeque<SseEvent>,
    phase: Phase,
}

fn data(value: &impl Serialize) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(value).unwrap_or_default())
}

impl State {
    fn chunk(&mut self, delta: Delta<'_>, finish: Option<&'static str>) {
        let chunk = Chunk::delta(&self.watch.info, delta, finish, self.include_usage);
        self.queue.push_back(data(&chunk));
    }

    /// The next server-sent event; `None` once the stream is over.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            match self.phase {
                Phase::Done => return None,
                Phase::Start => {
                    self.chunk(Delta::role(), None);
                    self.phase = Phase::Running;
                }
                Phase::Running => match self.watch.next().await {
                    Step::Delta(piece) => {
                        if let Some(out) = self.text.push(&piece) {
                            self.chunk(Delta::text(&out), None);
                        }
                    }
                    Step::Ended(Ok(trace)) => {
                        let rest = self.text.rest(reply(&trace));
                        if !rest.is_empty() {
                            self.chunk(Delta::text(&rest), None);
                        }
                        self.chunk(Delta::default(), Some(finish_reason(&trace)));
                        if self.include_usage {
                            let usage = Chunk::usage(&self.watch.info, Usage::of(&trace));
                            self.queue.push_back(data(&usage));
                        }
                        self.queue.push_back(SseEvent::default().data("[DONE]"));
                        self.phase = Phase::Done;
                    }
                    Step::Ended(Err(e)) => {
                        self.queue.push_back(data(&e.body()));
                        self.phase = Phase::Done;
                    }
                },
            }
        }
    }
}

/// The run's answer as server-sent events.
pub(crate) fn events(
    watch: Watch,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let state = State {
        watch,
        include_usage,
        text: Text::default(),
        queue: VecDeque::new(),
        phase: Phase::Start,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pieces: &[&str]) -> (Text, String) {
        let mut text = Text::default();
        let mut sent = String::new();
        for piece in pieces {
            if let Some(out) = text.push(piece) {
                assert!(!out.is_empty());
                sent.push_str(&out);
            }
        }
        (text, sent)
    }

    #[test]
    fn the_pieces_add_up_to_the_trimmed_reply() {
        let pieces = [
            "\n ",
            " Customer",
            " 1042",
            " has",
            " 3",
            " devices.",
            " \n",
            "\n",
        ];
        let (text, sent) = stream(&pieces);
        let reply = pieces.concat();
        let reply = reply.trim();
        assert_eq!(
            sent, reply,
            "leading whitespace dropped, trailing held back"
        );
        assert_eq!(text.rest(reply), "");
        // Whitespace inside the text is sent once more text follows it.
        let (_, sent) = stream(&["a ", " ", "b"]);
        assert_eq!(sent, "a  b");
    }

    #[test]
    fn what_was_not_streamed_follows_and_a_replaced_text_is_followed_by_the_reply() {
        // Nothing streamed (a graph whose nodes do not stream): the reply.
        let (text, _) = stream(&[]);
        assert_eq!(text.rest("Hello."), "Hello.");
        // Events missed: the rest of the reply.
        let (text, _) = stream(&["Customer 1042"]);
        assert_eq!(text.rest("Customer 1042 has 3 devices."), " has 3 devices.");
        // The graph replaced what it streamed.
        let (text, _) = stream(&["Customer 1042 has 7 devices."]);
        assert_eq!(
            text.rest("Customer 1042 has 3 devices."),
            "\n\nCustomer 1042 has 3 devices."
        );
        assert_eq!(text.rest(""), "");
    }
}
