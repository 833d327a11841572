//! Server-sent events: an incremental parser for upstream streams (WHATWG event-stream rules)
//! and the encoder for the events the edge streams to browsers.

/// Longest line kept; a longer one is dropped so a broken upstream cannot exhaust memory.
/// The data of one event is capped the same way.
pub const MAX_LINE_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` when absent or empty (the spec's default "message").
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field of this event, if it had one. Unlike a browser's `lastEventId`, it is
    /// not carried over to later events: remembering it is the caller's business.
    pub id: Option<String>,
}

/// Incremental event-stream parser: feed it bytes split anywhere, get whole events back.
///
/// Lines end with CRLF, LF or CR (also when the CR and LF arrive in different `feed` calls);
/// a leading BOM is ignored; `:` lines are comments; `field: value` loses one space after the
/// colon; a line without a colon is a field with an empty value; an event is dispatched on a
/// blank line and only if it had a `data` line; an `id` containing NUL is ignored; invalid
/// UTF-8 is decoded lossily. Lines over [`MAX_LINE_BYTES`] are dropped.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The last line ended with CR: an LF at the start of the next bytes belongs to it.
    after_cr: bool,
    /// The current line grew past the cap: skip to its end.
    overlong: bool,
    /// No line has ended yet, so a BOM may still be at the start of `line`.
    at_start: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self { at_start: true, ..Self::default() }
    }

    /// Parses `bytes` and returns the events they complete.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some((&first, rest)) = bytes.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    bytes = rest;
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    let (text, rest) = bytes.split_at(end);
                    self.push(text);
                    self.after_cr = rest.first() == Some(&b'\r');
                    bytes = rest.get(1..).unwrap_or_default();
                    if let Some(event) = self.end_line() {
                        out.push(event);
                    }
                }
                None => {
                    self.push(bytes);
                    bytes = &[];
                }
            }
        }
        out
    }

    /// Ends the stream. Per the spec an unterminated last event is never dispatched, so this
    /// returns nothing; the parser is reset for a new stream.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        *self = Self::new();
        Vec::new()
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len().saturating_add(bytes.len()) > MAX_LINE_BYTES {
            self.line = Vec::new();
            self.overlong = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self) -> Option<SseEvent> {
        let raw = std::mem::take(&mut self.line);
        let at_start = std::mem::replace(&mut self.at_start, false);
        if std::mem::replace(&mut self.overlong, false) {
            return None;
        }
        let bytes = match raw.strip_prefix(BOM) {
            Some(rest) if at_start => rest,
            _ => raw.as_slice(),
        };
        // Valid UTF-8 (the usual case) is checked by the faster path; only invalid lines pay
        // for the replacement characters.
        let line = match std::str::from_utf8(bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        if line.is_empty() {
            return self.dispatch();
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "" => {} // a comment
            "event" => self.event = value.to_owned(),
            "data" => self.append_data(value),
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields mean nothing to a server-side reader
        }
        None
    }

    fn append_data(&mut self, value: &str) {
        // Same cap as lines: many short data lines must not grow one event without bound.
        if self.data.len().saturating_add(value.len()) >= MAX_LINE_BYTES {
            return;
        }
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(value);
        self.has_data = true;
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let id = self.id.take();
        if !std::mem::replace(&mut self.has_data, false) {
            return None;
        }
        Some(SseEvent { event: (!event.is_empty()).then_some(event), data, id })
    }
}

/// `id: N\nevent: NAME\ndata: ...\n\n`: one `data:` line per line of `data` (CRLF, LF and CR
/// all split), CR and LF removed from `event` so it cannot inject fields; no `event:` line when
/// it is empty.
pub fn encode_event(event: &str, id: u64, data: &str) -> String {
    let name = strip_line_breaks(event);
    let mut out = format!("id: {id}\n");
    if !name.is_empty() {
        out.push_str("event: ");
        out.push_str(&name);
        out.push('\n');
    }
    for line in data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `: text\n\n`, a comment browsers ignore (heartbeats); CR and LF removed from `text`.
pub fn encode_comment(text: &str) -> String {
    format!(": {}\n\n", strip_line_breaks(text))
}

fn strip_line_breaks(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = parser.feed(input);
        events.extend(parser.finish());
        events
    }

    fn data(event: &SseEvent) -> &str {
        &event.data
    }

    fn message(data: &str) -> SseEvent {
        SseEvent { event: None, data: data.to_owned(), id: None }
    }

    #[test]
    fn lf_crlf_and_cr_line_ends_all_work() {
        for input in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\ndata: b\n\r",
        ] {
            assert_eq!(parse(input), vec![message("a"), message("b")], "{input:?}");
        }
    }

    #[test]
    fn a_cr_ending_one_feed_and_an_lf_starting_the_next_are_one_line_end() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        // Were the LF a second line end, this blank line would dispatch.
        assert!(parser.feed(b"\ndata: b\r").is_empty());
        assert_eq!(parser.feed(b"\n\r\n"), vec![message("a\nb")]);
    }

    #[test]
    fn a_cr_at_the_end_of_a_feed_still_ends_the_line_when_no_lf_follows() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        assert_eq!(parser.feed(b"\r"), vec![message("a")]);
    }

    #[test]
    fn a_leading_bom_is_ignored_even_when_split() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"\xEF\xBB").is_empty());
        assert_eq!(parser.feed(b"\xBFdata: x\n\n"), vec![message("x")]);
        // A BOM later in the stream is not special: the line is an unknown field.
        assert!(parser.feed(b"\xEF\xBB\xBFdata: y\n\n").is_empty());
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(parse(b": heartbeat\ndata: x\n:more\n\n"), vec![message("x")]);
        assert!(parse(b": only a comment\n\n").is_empty());
    }

    #[test]
    fn data_lines_join_with_newlines_and_lose_one_space() {
        let events = parse(b"data: one\ndata:two\ndata:  three\ndata\n\n");
        assert_eq!(events.iter().map(data).collect::<Vec<_>>(), ["one\ntwo\n three\n"]);
    }

    #[test]
    fn a_field_without_a_colon_has_an_empty_value() {
        assert_eq!(parse(b"data\n\n"), vec![message("")]);
        let events = parse(b"event\ndata: x\n\n");
        assert_eq!(events, vec![message("x")]);
    }

    #[test]
    fn event_names_and_ids_are_reported_per_event() {
        let events = parse(b"event: delta\nid: 7\ndata: x\n\ndata: y\n\n");
        let first = SseEvent { event: Some("delta".into()), data: "x".into(), id: Some("7".into()) };
        assert_eq!(events, vec![first, message("y")]);
    }

    #[test]
    fn an_id_containing_nul_is_ignored() {
        assert_eq!(parse(b"id: a\0b\ndata: x\n\n"), vec![message("x")]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert!(parse(b"event: ping\nid: 3\n\n").is_empty());
        // And its fields do not leak into the next event.
        assert_eq!(parse(b"event: ping\n\ndata: x\n\n"), vec![message("x")]);
    }

    #[test]
    fn an_unterminated_last_event_is_not_dispatched() {
        assert!(parse(b"data: x\n").is_empty());
        assert!(parse(b"data: x").is_empty());
    }

    #[test]
    fn a_line_over_one_mebibyte_is_dropped_and_parsing_goes_on() {
        let mut parser = SseParser::new();
        let mut long = b"data: ".to_vec();
        long.resize(MAX_LINE_BYTES + 10, b'x');
        for piece in long.chunks(4096) {
            assert!(parser.feed(piece).is_empty());
        }
        assert!(parser.line.is_empty());
        assert!(parser.feed(b"\n\n").is_empty());
        assert_eq!(parser.feed(b"data: after\n\n"), vec![message("after")]);
    }

    #[test]
    fn the_data_of_one_event_is_capped_too() {
        let mut parser = SseParser::new();
        let line = format!("data: {}\n", "x".repeat(1000));
        for _ in 0..2000 {
            assert!(parser.feed(line.as_bytes()).is_empty());
        }
        let events = parser.feed(b"\n");
        assert!(events.iter().all(|e| e.data.len() < MAX_LINE_BYTES));
        assert_eq!(parser.feed(b"data: next\n\n"), vec![message("next")]);
    }

    #[test]
    fn multi_byte_characters_split_across_feeds_survive() {
        let input = "data: héllo 👋\n\n".as_bytes();
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for byte in input {
            events.extend(parser.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(events, vec![message("héllo 👋")]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_a_panic() {
        assert_eq!(parse(b"data: a\xFF\xC3b\n\n"), vec![message("a\u{FFFD}\u{FFFD}b")]);
    }

    #[test]
    fn the_encoder_writes_id_event_and_one_data_line_per_line() {
        assert_eq!(
            encode_event("delta", 3, "one\ntwo\r\nthree\rfour"),
            "id: 3\nevent: delta\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
        );
        assert_eq!(encode_event("", 1, ""), "id: 1\ndata: \n\n");
    }

    #[test]
    fn the_encoder_strips_line_breaks_from_the_event_name() {
        assert_eq!(encode_event("done\r\ndata: injected", 1, "x"), "id: 1\nevent: donedata: injected\ndata: x\n\n");
        assert_eq!(encode_comment("keep\nalive\r"), ": keepalive\n\n");
    }

    #[test]
    fn an_encoded_event_parses_back_to_the_same_event() {
        for data in ["", "plain", "two\nlines", " leading space", "trailing\n", "{\"a\":\"b: c\"}"] {
            let wire = encode_event("delta", 42, data);
            let expected = SseEvent { event: Some("delta".into()), data: data.into(), id: Some("42".into()) };
            assert_eq!(parse(wire.as_bytes()), vec![expected], "{data:?}");
        }
        assert!(parse(encode_comment("ping").as_bytes()).is_empty());
    }
}
