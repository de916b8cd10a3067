//! Length-prefixed framing of Bitswap messages on a libp2p stream: each
//! message is an unsigned varint (multiformats, minimal encoding) of the body
//! length followed by the protobuf body, as boxo and Helia write them.

use bytes::{Buf, Bytes, BytesMut};

use super::error::BitswapError;
use super::message::BitswapMessage;
use super::MAX_MESSAGE_SIZE;

/// Longest valid length prefix: a u64 varint is at most 10 bytes.
const MAX_PREFIX_LEN: usize = 10;

/// Appends `body` to `out` with its varint length prefix.
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) -> Result<(), BitswapError> {
    if body.len() > MAX_MESSAGE_SIZE {
        return Err(BitswapError::MessageTooLarge { len: body.len() as u64, max: MAX_MESSAGE_SIZE });
    }
    let mut buf = unsigned_varint::encode::usize_buffer();
    out.reserve(body.len() + MAX_PREFIX_LEN);
    out.extend_from_slice(unsigned_varint::encode::usize(body.len(), &mut buf));
    out.extend_from_slice(body);
    Ok(())
}

impl BitswapMessage {
    /// Encodes the message with its length prefix, ready to write to a
    /// `/ipfs/bitswap/1.2.0` stream.
    pub fn encode_framed(&self) -> Result<Vec<u8>, BitswapError> {
        let body = self.encode()?;
        let mut out = Vec::new();
        encode_frame(&body, &mut out)?;
        Ok(out)
    }
}

/// Sans-IO splitter of a byte stream into Bitswap message bodies.
///
/// Feed whatever the stream yields with [`push`](Self::push), then drain with
/// [`next_frame`](Self::next_frame) or [`next_message`](Self::next_message)
/// until they return `Ok(None)`. A frame whose announced length exceeds the
/// limit is refused as soon as its prefix arrives, so the buffer never holds
/// more than one maximal frame plus the caller's last push. After any error
/// the stream is out of sync and must be closed.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the [`MAX_MESSAGE_SIZE`] limit.
    pub fn new() -> Self {
        Self::with_max_size(MAX_MESSAGE_SIZE)
    }

    /// A decoder with a custom body-size limit (for tests or tighter links).
    pub fn with_max_size(max: usize) -> Self {
        Self { buf: BytesMut::new(), max }
    }

    /// Buffers bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message body, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, BitswapError> {
        let (len, prefix_len) = match unsigned_varint::decode::usize(&self.buf) {
            Ok((len, rest)) => (len, self.buf.len() - rest.len()),
            Err(unsigned_varint::decode::Error::Insufficient) => {
                // A prefix never needs more than 10 bytes; more without a
                // terminator is garbage, not a slow sender.
                if self.buf.len() >= MAX_PREFIX_LEN {
                    return Err(BitswapError::LengthPrefix(unsigned_varint::decode::Error::Overflow));
                }
                return Ok(None);
            }
            Err(e) => return Err(BitswapError::LengthPrefix(e)),
        };
        if len > self.max {
            tracing::debug!(len, max = self.max, "bitswap frame over the size limit");
            return Err(BitswapError::MessageTooLarge { len: len as u64, max: self.max });
        }
        if self.buf.len() - prefix_len < len {
            // Reserve now so the rest of the frame lands without regrowth.
            self.buf.reserve(prefix_len + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(prefix_len);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The next complete message, decoded.
    pub fn next_message(&mut self) -> Result<Option<BitswapMessage>, BitswapError> {
        match self.next_frame()? {
            Some(body) => BitswapMessage::decode(&body).map(Some),
            None => Ok(None),
        }
    }

    /// Call when the stream has ended: fails if a partial frame is left.
    pub fn finish(&self) -> Result<(), BitswapError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(BitswapError::TruncatedFrame { buffered: self.buf.len() })
        }
    }
}
