//! A decoder for server-sent events, as far as OpenAI-style streams use
//! them: `data:` lines, events ended by a blank line, `:` comments.
//!
//! Bytes arrive in arbitrary chunks (a line, or even a UTF-8 character,
//! may be split), so the decoder buffers until a line is complete.

/// Incremental SSE decoder yielding the `data` of each event.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    /// `data` lines of the current event, joined by `\n`.
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds `bytes`, returning the data of every event they complete.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, &mut events);
            } else {
                self.line.push(b);
            }
        }
        events
    }

    /// Ends the stream: an unterminated last event is still delivered, as
    /// servers often omit the final blank line.
    pub(crate) fn finish(&mut self) -> Option<String> {
        let mut events = Vec::new();
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, &mut events);
        }
        events.extend(self.data.take());
        events.pop()
    }

    fn line_done(&mut self, line: &[u8], events: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            events.extend(self.data.take());
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        // Other fields (`event`, `id`, `retry`) and comments (empty field
        // name) carry nothing an OpenAI-style stream needs.
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut d = SseDecoder::default();
        assert!(d.feed(b": keep-alive\n\nda").is_empty());
        assert!(d.feed(b"ta: {\"a\":").is_empty());
        assert_eq!(
            d.feed(b"1}\r\n\r\ndata:[DONE]\n\n"),
            ["{\"a\":1}", "[DONE]"]
        );
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn multi_line_data_split_utf8_and_unterminated_tail() {
        let mut d = SseDecoder::default();
        let text = "data: h\u{e9}\ndata: llo\nevent: x\n\ndata: tail";
        let (a, b) = text.as_bytes().split_at(8); // inside the two-byte `é`
        assert!(d.feed(a).is_empty());
        assert_eq!(d.feed(b), ["h\u{e9}\nllo"]);
        assert_eq!(d.finish().as_deref(), Some("tail"));
    }
}
