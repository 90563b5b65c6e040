//! Message framing on stream transports (TCP): Content-Length is mandatory (RFC 3261 §18.3),
//! and the CRLF keepalives of RFC 5626 §3.5.1 are told apart from messages.
use super::datagram::parse;
use super::error::WireError;
use super::head::{find_head_end, head_text, start_line};
use super::validate::content_length;
use crate::message::{HeaderName, Message};
use bytes::{Buf, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    Message(Message),
    /// A CRLFCRLF ping: answer with a CRLF pong.
    Ping,
    /// A lone CRLF between messages: the answer to our ping.
    Pong,
}

/// Cuts a byte stream into messages. Feed it with `push`, drain it with `next` (it is an
/// iterator that yields None until more bytes arrive). A message that is framed but faulty
/// yields an Err and decoding goes on; an error for which `breaks_framing()` holds closes the
/// decoder, and the connection should be closed too. `last_rejected()` holds the bytes of the
/// last faulty message, for `wire::error_response`.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: BytesMut,
    max_message: usize,
    /// Where the search for the end of the header block resumes.
    scanned: usize,
    /// The length of the message in front, once its header block is complete.
    framed: Option<usize>,
    closed: bool,
    rejected: Vec<u8>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

    pub fn new() -> Self {
        Self::with_max_message(Self::DEFAULT_MAX_MESSAGE)
    }

    pub fn with_max_message(max_message: usize) -> Self {
        StreamDecoder {
            buf: BytesMut::new(),
            max_message,
            scanned: 0,
            framed: None,
            closed: false,
            rejected: Vec::new(),
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if !self.closed {
            self.buf.extend_from_slice(data);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes received and not yet returned as an item.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn last_rejected(&self) -> &[u8] {
        &self.rejected
    }

    fn keepalive(&mut self) -> Option<Option<StreamItem>> {
        match self.buf.as_ref() {
            [b'\r', b'\n', b'\r', b'\n', ..] => {
                self.buf.advance(4);
                Some(Some(StreamItem::Ping))
            }
            // A ping is written as one 4-byte segment, so "\r\n" then "\r" is a ping in
            // flight; a CRLF with nothing or a start line after it is a pong.
            [b'\r', b'\n', b'\r'] => Some(None),
            [b'\r', b'\n', ..] => {
                self.buf.advance(2);
                Some(Some(StreamItem::Pong))
            }
            [b'\r'] => Some(None),
            _ => None,
        }
    }

    fn fail(&mut self, error: WireError, upto: usize) -> Option<Result<StreamItem, WireError>> {
        self.rejected = self.buf[..upto.min(self.buf.len())].to_vec();
        self.buf = BytesMut::new();
        self.closed = true;
        Some(Err(error))
    }
}

impl Iterator for StreamDecoder {
    type Item = Result<StreamItem, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.closed {
            return None;
        }
        let total = match self.framed {
            Some(total) => total,
            None => {
                if let Some(item) = self.keepalive() {
                    return item.map(Ok);
                }
                let Some((head_end, body_start)) = find_head_end(&self.buf, self.scanned) else {
                    if self.buf.len() > self.max_message {
                        let upto = self.max_message;
                        return self.fail(WireError::TooLarge(self.max_message), upto);
                    }
                    // Resume a little before the end: the empty line may straddle two pushes.
                    self.scanned = self.buf.len().saturating_sub(3);
                    return None;
                };
                let total = match framed_length(&self.buf[..head_end]) {
                    Ok(length) => body_start.saturating_add(length),
                    Err(e) => return self.fail(e, head_end),
                };
                if total > self.max_message {
                    return self.fail(WireError::TooLarge(self.max_message), head_end);
                }
                self.framed = Some(total);
                total
            }
        };
        if self.buf.len() < total {
            return None;
        }
        let bytes = self.buf.split_to(total);
        self.scanned = 0;
        self.framed = None;
        Some(match parse(&bytes) {
            Ok(message) => Ok(StreamItem::Message(message)),
            Err(e) => {
                self.rejected = bytes.to_vec();
                Err(e)
            }
        })
    }
}

/// The Content-Length of a header block, which a stream cannot do without.
fn framed_length(head: &[u8]) -> Result<usize, WireError> {
    let text = head_text(head);
    let (_, lines) = start_line(&text);
    let mut length = None;
    for line in lines.flatten() {
        if HeaderName::parse(line.name) == HeaderName::ContentLength {
            if length.is_some() {
                return Err(WireError::Duplicate("Content-Length"));
            }
            length = Some(content_length(&line.value)?);
        }
    }
    length.ok_or(WireError::NoContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello";

    fn drain(d: &mut StreamDecoder) -> Vec<Result<StreamItem, WireError>> {
        d.by_ref().collect()
    }

    #[test]
    fn byte_by_byte_with_keepalives() {
        let mut stream = OPTIONS.to_vec();
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(OPTIONS);
        let mut d = StreamDecoder::new();
        // A ping is one write; the messages and the pong trickle in byte by byte.
        d.push(b"\r\n\r\n");
        let mut items = drain(&mut d);
        for &b in &stream {
            d.push(&[b]);
            items.extend(drain(&mut d));
        }
        let kinds: Vec<_> = items
            .iter()
            .map(|i| match i {
                Ok(StreamItem::Ping) => "ping",
                Ok(StreamItem::Pong) => "pong",
                Ok(StreamItem::Message(m)) if m.body() == b"hello" => "message",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["ping", "message", "pong", "message"]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn many_in_one_push() {
        let mut d = StreamDecoder::new();
        d.push(&[OPTIONS, OPTIONS, b"\r\n\r\n", OPTIONS].concat());
        assert_eq!(drain(&mut d).len(), 4);
    }

    #[test]
    fn content_length_is_mandatory_and_bounded() {
        let mut d = StreamDecoder::new();
        let no_length = String::from_utf8_lossy(OPTIONS).replace("Content-Length: 5\r\n", "");
        d.push(no_length.as_bytes());
        let e = d.next().unwrap().unwrap_err();
        assert_eq!(e, WireError::NoContentLength);
        assert!(e.breaks_framing() && d.is_closed());
        assert!(crate::wire::error_response(d.last_rejected(), &e).is_some());
        d.push(OPTIONS);
        assert_eq!(d.next(), None);

        let mut d = StreamDecoder::with_max_message(1024);
        d.push(String::from_utf8_lossy(OPTIONS).replace("Length: 5", "Length: 5000").as_bytes());
        assert_eq!(d.next(), Some(Err(WireError::TooLarge(1024))));

        let mut d = StreamDecoder::with_max_message(1024);
        for _ in 0..200 {
            d.push(b"X-Pad: 0123456789\r\n");
            if let Some(r) = d.next() {
                assert_eq!(r, Err(WireError::TooLarge(1024)));
                return;
            }
        }
        panic!("unbounded buffering");
    }

    #[test]
    fn faulty_but_framed_message_does_not_stop_the_stream() {
        let bad = String::from_utf8_lossy(OPTIONS).replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        let mut d = StreamDecoder::new();
        d.push(&[bad.as_bytes(), OPTIONS].concat());
        assert_eq!(d.next(), Some(Err(WireError::CSeqMethod)));
        assert_eq!(d.last_rejected(), bad.as_bytes());
        assert!(matches!(d.next(), Some(Ok(StreamItem::Message(_)))));
    }
}
