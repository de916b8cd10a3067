//! The `/pollen/want/1.0.0` wire format (`docs/want-gossip.md`): varint-length-prefixed protobuf envelopes.
//!
//! ```protobuf
//! message Envelope {
//!   uint32 version = 1;                 // 1
//!   oneof body {
//!     Summary summary = 2;
//!     WantList want = 3;
//!     CidList cancel = 4;
//!     HaveList have = 5;
//!     CidList dont_have = 6;
//!     RequestList request = 7;
//!     Block block = 8;
//!   }
//! }
//! message Summary { bytes own = 1; bytes near = 2; uint32 hashes = 3; }
//! message WantEntry { bytes cid = 1; fixed64 id = 2; uint32 hops_left = 3; uint32 ttl_ms = 4; }
//! message WantList { repeated WantEntry entries = 1; }
//! message CidList { repeated bytes cids = 1; }
//! // `within`: empty, or one per CID: 0 = no limit, n + 1 = served only by a provider closer than n hops.
//! // A CidList reader sees the CIDs and skips `within`.
//! message RequestList { repeated bytes cids = 1; repeated uint32 within = 2; }
//! message HaveEntry { bytes cid = 1; uint32 hops = 2; uint32 copies = 3; }
//! message HaveList { repeated HaveEntry entries = 1; }
//! message Block { bytes cid = 1; bytes data = 2; }
//! ```

use bytes::Bytes;
use cid::Cid;
use prost::Message as _;
use thiserror::Error;

use super::bloom::Bloom;
use super::{Control, HaveEntry, RequestEntry, WantEntry};

/// Protocol ID.
pub const PROTOCOL_ID: &str = "/pollen/want/1.0.0";
/// Envelope version this implementation speaks.
pub const WIRE_VERSION: u32 = 1;
/// Largest envelope accepted: a 2 MiB block with room to spare.
pub const MAX_ENVELOPE: usize = 3 * 1024 * 1024;
/// Most entries in one list message.
pub const MAX_ENTRIES: usize = 4096;

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Envelope {
        #[prost(uint32, tag = "1")]
        pub version: u32,
        #[prost(oneof = "Body", tags = "2, 3, 4, 5, 6, 7, 8")]
        pub body: Option<Body>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        #[prost(message, tag = "2")]
        Summary(Summary),
        #[prost(message, tag = "3")]
        Want(WantList),
        #[prost(message, tag = "4")]
        Cancel(CidList),
        #[prost(message, tag = "5")]
        Have(HaveList),
        #[prost(message, tag = "6")]
        DontHave(CidList),
        #[prost(message, tag = "7")]
        Request(RequestList),
        #[prost(message, tag = "8")]
        Block(Block),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(bytes = "vec", tag = "1")]
        pub own: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub near: Vec<u8>,
        #[prost(uint32, tag = "3")]
        pub hashes: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WantEntry {
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        #[prost(fixed64, tag = "2")]
        pub id: u64,
        #[prost(uint32, tag = "3")]
        pub hops_left: u32,
        #[prost(uint32, tag = "4")]
        pub ttl_ms: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WantList {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<WantEntry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CidList {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub cids: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RequestList {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub cids: Vec<Vec<u8>>,
        #[prost(uint32, repeated, tag = "2")]
        pub within: Vec<u32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HaveEntry {
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub hops: u32,
        #[prost(uint32, tag = "3")]
        pub copies: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HaveList {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<HaveEntry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Block {
        #[prost(bytes = "vec", tag = "1")]
        pub cid: Vec<u8>,
        #[prost(bytes = "bytes", tag = "2")]
        pub data: bytes::Bytes,
    }
}

/// A message on the wire: a control message or a block.
#[derive(Debug, Clone, PartialEq)]
pub enum WireMessage {
    /// Everything the router core handles.
    Control(Control),
    /// A block's bytes (checked against its CID by the receiver before anything else).
    Block {
        /// The CID the sender claims.
        cid: Cid,
        /// The bytes.
        data: Bytes,
    },
}

/// Why a message could not be decoded. The sending peer's stream is closed.
#[derive(Debug, Error, PartialEq)]
pub enum WireError {
    /// Not a protobuf envelope.
    #[error("malformed envelope: {0}")]
    Protobuf(String),
    /// An envelope version this side does not speak.
    #[error("wire version {0}, this side speaks 1")]
    Version(u32),
    /// An envelope without a body.
    #[error("empty envelope")]
    Empty,
    /// An unparsable CID.
    #[error("bad CID: {0}")]
    Cid(String),
    /// Too many entries in one list.
    #[error("{0} entries in one message, at most 4096")]
    TooManyEntries(usize),
    /// A hop count or TTL that does not fit its field.
    #[error("field out of range: {0}")]
    Range(&'static str),
    /// Bloom summary with a bad size or hash count.
    #[error("bad summary: {0}")]
    Summary(String),
    /// A length prefix beyond [`MAX_ENVELOPE`].
    #[error("message of {0} bytes, at most 3 MiB")]
    TooLarge(usize),
}

fn cid(bytes: &[u8]) -> Result<Cid, WireError> {
    Cid::try_from(bytes).map_err(|e| WireError::Cid(e.to_string()))
}

fn cids(list: pb::CidList) -> Result<Vec<Cid>, WireError> {
    if list.cids.len() > MAX_ENTRIES {
        return Err(WireError::TooManyEntries(list.cids.len()));
    }
    list.cids.iter().map(|c| cid(c)).collect()
}

fn cid_list(cids: &[Cid]) -> pb::CidList {
    pb::CidList { cids: cids.iter().map(Cid::to_bytes).collect() }
}

fn request_list(entries: &[RequestEntry]) -> pb::RequestList {
    let within = if entries.iter().all(|e| e.within.is_none()) {
        Vec::new()
    } else {
        entries.iter().map(|e| e.within.map_or(0, |n| u32::from(n) + 1)).collect()
    };
    pb::RequestList { cids: entries.iter().map(|e| e.cid.to_bytes()).collect(), within }
}

fn request_entries(list: pb::RequestList) -> Result<Vec<RequestEntry>, WireError> {
    if !list.within.is_empty() && list.within.len() != list.cids.len() {
        return Err(WireError::Range("within"));
    }
    let cids = cids(pb::CidList { cids: list.cids })?;
    let limits = list.within.into_iter().map(Some).chain(std::iter::repeat(None));
    cids.into_iter()
        .zip(limits)
        .map(|(cid, w)| {
            let within = match w {
                None | Some(0) => None,
                Some(n) => Some(u8::try_from(n - 1).map_err(|_| WireError::Range("within"))?),
            };
            Ok(RequestEntry { cid, within })
        })
        .collect()
}

impl Control {
    /// Bytes this message takes on the wire, length prefix included, without encoding it (the simulator charges
    /// airtime for every control message).
    pub fn framed_len(&self) -> usize {
        framed(pb::Envelope { version: WIRE_VERSION, body: Some(self.body()) }.encoded_len())
    }

    fn body(&self) -> pb::Body {
        match self {
            Control::Summary { own, near } => pb::Body::Summary(pb::Summary {
                own: own.bits().to_vec(),
                near: near.bits().to_vec(),
                hashes: u32::from(own.hashes()),
            }),
            Control::Want(entries) => pb::Body::Want(pb::WantList {
                entries: entries
                    .iter()
                    .map(|w| pb::WantEntry {
                        cid: w.cid.to_bytes(),
                        id: w.id,
                        hops_left: u32::from(w.hops_left),
                        ttl_ms: w.ttl_ms,
                    })
                    .collect(),
            }),
            Control::Cancel(c) => pb::Body::Cancel(cid_list(c)),
            Control::Have(entries) => pb::Body::Have(pb::HaveList {
                entries: entries
                    .iter()
                    .map(|h| pb::HaveEntry { cid: h.cid.to_bytes(), hops: u32::from(h.hops), copies: h.copies })
                    .collect(),
            }),
            Control::DontHave(c) => pb::Body::DontHave(cid_list(c)),
            Control::Request(entries) => pb::Body::Request(request_list(entries)),
        }
    }
}

/// Length of a body of `len` bytes behind its unsigned-varint prefix.
fn framed(len: usize) -> usize {
    let mut prefix = unsigned_varint::encode::usize_buffer();
    unsigned_varint::encode::usize(len, &mut prefix).len() + len
}

impl WireMessage {
    /// Encodes the envelope body (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            WireMessage::Block { cid, data } => pb::Body::Block(pb::Block { cid: cid.to_bytes(), data: data.clone() }),
            WireMessage::Control(c) => c.body(),
        };
        pb::Envelope { version: WIRE_VERSION, body: Some(body) }.encode_to_vec()
    }

    /// Encodes with the unsigned-varint length prefix.
    pub fn encode_framed(&self) -> Vec<u8> {
        let body = self.encode();
        let mut prefix = unsigned_varint::encode::usize_buffer();
        let mut out = unsigned_varint::encode::usize(body.len(), &mut prefix).to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes an envelope body.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        if body.len() > MAX_ENVELOPE {
            return Err(WireError::TooLarge(body.len()));
        }
        let envelope = pb::Envelope::decode(body).map_err(|e| WireError::Protobuf(e.to_string()))?;
        if envelope.version != WIRE_VERSION {
            return Err(WireError::Version(envelope.version));
        }
        let control = match envelope.body.ok_or(WireError::Empty)? {
            pb::Body::Block(b) => return Ok(WireMessage::Block { cid: cid(&b.cid)?, data: b.data }),
            pb::Body::Summary(s) => {
                let hashes = u8::try_from(s.hashes).map_err(|_| WireError::Range("hashes"))?;
                let own = Bloom::from_parts(s.own, hashes).map_err(WireError::Summary)?;
                let near = Bloom::from_parts(s.near, hashes).map_err(WireError::Summary)?;
                Control::Summary { own, near }
            }
            pb::Body::Want(list) => {
                if list.entries.len() > MAX_ENTRIES {
                    return Err(WireError::TooManyEntries(list.entries.len()));
                }
                let entries = list
                    .entries
                    .iter()
                    .map(|w| {
                        Ok(WantEntry {
                            cid: cid(&w.cid)?,
                            id: w.id,
                            hops_left: u8::try_from(w.hops_left).map_err(|_| WireError::Range("hops_left"))?,
                            ttl_ms: w.ttl_ms,
                        })
                    })
                    .collect::<Result<_, WireError>>()?;
                Control::Want(entries)
            }
            pb::Body::Cancel(c) => Control::Cancel(cids(c)?),
            pb::Body::Have(list) => {
                if list.entries.len() > MAX_ENTRIES {
                    return Err(WireError::TooManyEntries(list.entries.len()));
                }
                let entries = list
                    .entries
                    .iter()
                    .map(|h| {
                        Ok(HaveEntry {
                            cid: cid(&h.cid)?,
                            hops: u8::try_from(h.hops).map_err(|_| WireError::Range("hops"))?,
                            copies: h.copies,
                        })
                    })
                    .collect::<Result<_, WireError>>()?;
                Control::Have(entries)
            }
            pb::Body::DontHave(c) => Control::DontHave(cids(c)?),
            pb::Body::Request(list) => Control::Request(request_entries(list)?),
        };
        Ok(WireMessage::Control(control))
    }
}

/// Splits a byte stream into envelope bodies, holding at most one partial envelope.
#[derive(Debug, Default)]
pub struct EnvelopeDecoder {
    buf: bytes::BytesMut,
}

impl EnvelopeDecoder {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<WireMessage>, WireError> {
        let (len, rest) = match unsigned_varint::decode::usize(&self.buf) {
            Ok(v) => v,
            Err(unsigned_varint::decode::Error::Insufficient) => return Ok(None),
            Err(e) => return Err(WireError::Protobuf(e.to_string())),
        };
        if len > MAX_ENVELOPE {
            return Err(WireError::TooLarge(len));
        }
        if rest.len() < len {
            return Ok(None);
        }
        let prefix = self.buf.len() - rest.len();
        let frame = self.buf.split_to(prefix + len);
        WireMessage::decode(&frame[prefix..]).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::unixfs::{cid_v1_sha256, RAW_CODEC};

    fn cid(n: u32) -> Cid {
        cid_v1_sha256(RAW_CODEC, &n.to_le_bytes())
    }

    proptest! {
        /// The length the simulator charges is the length the codec writes, for every kind of control message.
        #[test]
        fn framed_len_is_the_encoded_length(
            kind in 0u8..6,
            items in proptest::collection::vec((any::<u32>(), any::<u64>(), any::<u8>(), any::<u32>()), 0..300),
            bloom_bytes in 1usize..4096,
        ) {
            let cids: Vec<Cid> = items.iter().map(|i| cid(i.0)).collect();
            let control = match kind {
                0 => Control::Want(
                    items.iter().map(|&(c, id, hops_left, ttl_ms)| WantEntry { cid: cid(c), id, hops_left, ttl_ms }).collect(),
                ),
                1 => Control::Have(
                    items.iter().map(|&(c, _, hops, copies)| HaveEntry { cid: cid(c), hops, copies }).collect(),
                ),
                2 => Control::Cancel(cids),
                3 => Control::DontHave(cids),
                4 => Control::Request(
                    items.iter().map(|&(c, id, hops, _)| RequestEntry { cid: cid(c), within: (id % 3 > 0).then_some(hops) }).collect(),
                ),
                _ => {
                    let mut own = Bloom::new(bloom_bytes, 3);
                    cids.iter().for_each(|c| own.insert(c));
                    Control::Summary { near: Bloom::new(bloom_bytes, 3), own }
                }
            };
            prop_assert_eq!(control.framed_len(), WireMessage::Control(control.clone()).encode_framed().len());
        }

        /// REQUEST limits survive the wire, entry by entry, whether all, some or none of them are set.
        #[test]
        fn request_limits_round_trip(entries in proptest::collection::vec((any::<u32>(), any::<Option<u8>>()), 0..50)) {
            let msg = WireMessage::Control(Control::Request(
                entries.iter().map(|&(c, within)| RequestEntry { cid: cid(c), within }).collect(),
            ));
            prop_assert_eq!(WireMessage::decode(&msg.encode()), Ok(msg));
        }
    }

    #[test]
    fn a_request_without_limits_reads_as_unlimited_and_old_readers_see_its_cids() {
        let (a, b) = (cid(1), cid(2));
        // What a sender that predates `within` writes: the CIDs alone.
        let old = pb::RequestList { cids: vec![a.to_bytes(), b.to_bytes()], within: Vec::new() };
        let bytes = pb::Envelope { version: WIRE_VERSION, body: Some(pb::Body::Request(old)) }.encode_to_vec();
        let unlimited = [RequestEntry { cid: a, within: None }, RequestEntry { cid: b, within: None }];
        assert_eq!(WireMessage::decode(&bytes), Ok(WireMessage::Control(Control::Request(unlimited.to_vec()))));

        let limited = vec![RequestEntry { cid: a, within: Some(0) }, RequestEntry { cid: b, within: None }];
        let body = WireMessage::Control(Control::Request(limited)).encode();
        let envelope = pb::Envelope::decode(&body[..]).unwrap();
        let Some(pb::Body::Request(list)) = envelope.body else { panic!("not a request: {envelope:?}") };
        assert_eq!(list.within, vec![1, 0]);
        let as_cid_list = pb::CidList::decode(&list.encode_to_vec()[..]).unwrap();
        assert_eq!(as_cid_list.cids, vec![a.to_bytes(), b.to_bytes()]);
    }

    #[test]
    fn a_request_whose_limits_do_not_match_its_cids_is_refused() {
        let list = pb::RequestList { cids: vec![cid(1).to_bytes(), cid(2).to_bytes()], within: vec![1] };
        let body = pb::Envelope { version: WIRE_VERSION, body: Some(pb::Body::Request(list)) }.encode_to_vec();
        assert_eq!(WireMessage::decode(&body), Err(WireError::Range("within")));
        let list = pb::RequestList { cids: vec![cid(1).to_bytes()], within: vec![257] };
        let body = pb::Envelope { version: WIRE_VERSION, body: Some(pb::Body::Request(list)) }.encode_to_vec();
        assert_eq!(WireMessage::decode(&body), Err(WireError::Range("within")));
    }
}
