//! The typed Rust view of a Bitswap message and its conversion to and from
//! protobuf bytes.

use cid::Cid;
use prost::Message as _;

use super::error::BitswapError;
use super::pb;
use super::{MAX_BLOCKS_PER_MESSAGE, MAX_MESSAGE_SIZE, MAX_PRESENCES_PER_MESSAGE, MAX_WANTS_PER_MESSAGE};
use crate::unixfs::{sha256_multihash, DAG_PB_CODEC, SHA2_256_CODE};

/// What a want asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WantType {
    /// Send the block itself.
    #[default]
    Block,
    /// Only say whether you have it.
    Have,
}

/// Whether a peer has a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// It does.
    Have,
    /// It does not.
    DontHave,
}

/// One wantlist entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Want {
    /// The wanted block.
    pub cid: Cid,
    /// Higher is more urgent.
    pub priority: i32,
    /// Revoke a previous want for `cid`.
    pub cancel: bool,
    /// Block or Have.
    pub want_type: WantType,
    /// Ask for an explicit DontHave.
    pub send_dont_have: bool,
}

/// A decoded Bitswap 1.2.0 message.
///
/// `blocks` carries blocks from both the 1.0.0 `blocks` field and the 1.1.0+
/// `payload` field; their CIDs are recomputed from the bytes, so every block
/// here hashes to its CID by construction. Encoding always uses `payload`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BitswapMessage {
    /// Wants and cancels.
    pub wants: Vec<Want>,
    /// The wants are the sender's entire wantlist.
    pub full: bool,
    /// Blocks with their CIDs.
    pub blocks: Vec<(Cid, Vec<u8>)>,
    /// Have / DontHave answers.
    pub presences: Vec<(Cid, Presence)>,
    /// Bytes the sender still has queued for us.
    pub pending_bytes: i32,
}

impl BitswapMessage {
    /// Decodes a message body (no length prefix).
    ///
    /// Counts the repeated fields on the raw bytes before decoding, so a
    /// message stuffed with empty entries is refused before prost allocates a
    /// struct for each of them.
    pub fn decode(body: &[u8]) -> Result<Self, BitswapError> {
        if body.len() > MAX_MESSAGE_SIZE {
            return Err(BitswapError::MessageTooLarge { len: body.len() as u64, max: MAX_MESSAGE_SIZE });
        }
        scan::check_caps(body)?;
        let msg = pb::Message::decode(body).map_err(BitswapError::Malformed)?;
        Self::from_pb(msg)
    }

    /// Encodes the message body (no length prefix).
    ///
    /// Block CIDs are turned into prefixes, not re-hashed: the caller is
    /// expected to send only blocks it has verified. Fails if the message
    /// breaks a cap the receiver would enforce, or a block's CID uses a hash
    /// the receiver could not recompute.
    pub fn encode(&self) -> Result<Vec<u8>, BitswapError> {
        check_count("wantlist entries", self.wants.len(), MAX_WANTS_PER_MESSAGE)?;
        check_count("blocks", self.blocks.len(), MAX_BLOCKS_PER_MESSAGE)?;
        check_count("block presences", self.presences.len(), MAX_PRESENCES_PER_MESSAGE)?;
        let msg = self.to_pb()?;
        let len = msg.encoded_len();
        if len > MAX_MESSAGE_SIZE {
            return Err(BitswapError::MessageTooLarge { len: len as u64, max: MAX_MESSAGE_SIZE });
        }
        Ok(msg.encode_to_vec())
    }

    fn to_pb(&self) -> Result<pb::Message, BitswapError> {
        let wantlist = (!self.wants.is_empty() || self.full).then(|| pb::Wantlist {
            entries: self
                .wants
                .iter()
                .map(|w| pb::Entry {
                    block: w.cid.to_bytes(),
                    priority: w.priority,
                    cancel: w.cancel,
                    want_type: match w.want_type {
                        WantType::Block => pb::WantType::Block,
                        WantType::Have => pb::WantType::Have,
                    } as i32,
                    send_dont_have: w.send_dont_have,
                })
                .collect(),
            full: self.full,
        });
        let payload = self
            .blocks
            .iter()
            .map(|(cid, data)| Ok(pb::Block { prefix: cid_prefix(cid)?, data: data.clone() }))
            .collect::<Result<_, BitswapError>>()?;
        let block_presences = self
            .presences
            .iter()
            .map(|(cid, presence)| pb::BlockPresence {
                cid: cid.to_bytes(),
                r#type: match presence {
                    Presence::Have => pb::BlockPresenceType::Have,
                    Presence::DontHave => pb::BlockPresenceType::DontHave,
                } as i32,
            })
            .collect();
        Ok(pb::Message { wantlist, blocks: Vec::new(), payload, block_presences, pending_bytes: self.pending_bytes })
    }

    fn from_pb(msg: pb::Message) -> Result<Self, BitswapError> {
        let (entries, full) = msg.wantlist.map_or((Vec::new(), false), |w| (w.entries, w.full));
        let wants = entries
            .into_iter()
            .enumerate()
            .map(|(index, e)| {
                let cid = parse_cid(&e.block, "wantlist entry", index)?;
                let want_type = match pb::WantType::try_from(e.want_type) {
                    Ok(pb::WantType::Block) => WantType::Block,
                    Ok(pb::WantType::Have) => WantType::Have,
                    Err(_) => return Err(BitswapError::UnknownWantType(e.want_type)),
                };
                Ok(Want { cid, priority: e.priority, cancel: e.cancel, want_type, send_dont_have: e.send_dont_have })
            })
            .collect::<Result<_, _>>()?;
        let mut blocks = Vec::with_capacity(msg.blocks.len() + msg.payload.len());
        for data in msg.blocks {
            // Bitswap 1.0.0 blocks are implicitly CIDv0: dag-pb, sha2-256.
            let cid = Cid::new_v0(sha256_multihash(&data))
                .map_err(|_| BitswapError::UnsupportedHash { code: SHA2_256_CODE, size: 32 })?;
            blocks.push((cid, data));
        }
        for (index, block) in msg.payload.into_iter().enumerate() {
            let prefix = Prefix::parse(&block.prefix, index)?;
            blocks.push((prefix.cid_for(&block.data, index)?, block.data));
        }
        let presences = msg
            .block_presences
            .into_iter()
            .enumerate()
            .map(|(index, p)| {
                let cid = parse_cid(&p.cid, "block presence", index)?;
                let presence = match pb::BlockPresenceType::try_from(p.r#type) {
                    Ok(pb::BlockPresenceType::Have) => Presence::Have,
                    Ok(pb::BlockPresenceType::DontHave) => Presence::DontHave,
                    Err(_) => return Err(BitswapError::UnknownPresenceType(p.r#type)),
                };
                Ok((cid, presence))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { wants, full, blocks, presences, pending_bytes: msg.pending_bytes })
    }
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), BitswapError> {
    if count > max {
        return Err(BitswapError::TooManyItems { field, count, max });
    }
    Ok(())
}

fn parse_cid(bytes: &[u8], field: &'static str, index: usize) -> Result<Cid, BitswapError> {
    crate::unixfs::parse_cid_exact(bytes).ok_or(BitswapError::InvalidCid { field, index })
}

/// The payload prefix of `cid`: varints of version, codec, multihash code
/// and digest length (Go's `cid.Prefix.Bytes()`).
fn cid_prefix(cid: &Cid) -> Result<Vec<u8>, BitswapError> {
    let mh = cid.hash();
    if mh.code() != SHA2_256_CODE || mh.size() != 32 {
        return Err(BitswapError::UnsupportedHash { code: mh.code(), size: u64::from(mh.size()) });
    }
    let mut out = Vec::with_capacity(8);
    let mut buf = unsigned_varint::encode::u64_buffer();
    for v in [u64::from(cid.version()), cid.codec(), mh.code(), u64::from(mh.size())] {
        out.extend_from_slice(unsigned_varint::encode::u64(v, &mut buf));
    }
    Ok(out)
}

/// A parsed payload prefix.
struct Prefix {
    version: u64,
    codec: u64,
}

impl Prefix {
    /// Parses exactly four minimal varints, as written by [`cid_prefix`] and
    /// by boxo and Helia.
    fn parse(bytes: &[u8], index: usize) -> Result<Self, BitswapError> {
        let bad = || BitswapError::InvalidPrefix { index };
        let mut rest = bytes;
        let mut fields = [0u64; 4];
        for field in &mut fields {
            let (v, r) = unsigned_varint::decode::u64(rest).map_err(|_| bad())?;
            *field = v;
            rest = r;
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        let [version, codec, code, size] = fields;
        if code != SHA2_256_CODE || size != 32 {
            return Err(BitswapError::UnsupportedHash { code, size });
        }
        match (version, codec) {
            (0, DAG_PB_CODEC) | (1, _) => Ok(Self { version, codec }),
            _ => Err(bad()),
        }
    }

    /// The CID of `data` under this prefix.
    fn cid_for(&self, data: &[u8], index: usize) -> Result<Cid, BitswapError> {
        let mh = sha256_multihash(data);
        if self.version == 0 {
            Cid::new_v0(mh).map_err(|_| BitswapError::InvalidPrefix { index })
        } else {
            Ok(Cid::new_v1(self.codec, mh))
        }
    }
}

/// A walk over raw protobuf bytes that counts the repeated fields we cap,
/// without allocating per item.
mod scan {
    use super::{check_count, BitswapError};
    use super::{MAX_BLOCKS_PER_MESSAGE, MAX_PRESENCES_PER_MESSAGE, MAX_WANTS_PER_MESSAGE};

    fn malformed(what: &'static str) -> BitswapError {
        BitswapError::MalformedWire(what)
    }

    /// Protobuf varint (up to 10 bytes; non-minimal forms accepted, as
    /// prost does).
    fn varint(buf: &mut &[u8]) -> Result<u64, BitswapError> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = buf.split_first().ok_or_else(|| malformed("truncated varint"))?;
            *buf = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint too long"))
    }

    /// Reads one field key and returns `(field number, length-delimited
    /// body if wire type 2)`, skipping other wire types' values.
    fn field<'a>(buf: &mut &'a [u8]) -> Result<(u64, Option<&'a [u8]>), BitswapError> {
        let key = varint(buf)?;
        let take = |buf: &mut &'a [u8], n: usize| -> Result<&'a [u8], BitswapError> {
            if buf.len() < n {
                return Err(malformed("truncated field"));
            }
            let (head, tail) = buf.split_at(n);
            *buf = tail;
            Ok(head)
        };
        match key & 7 {
            0 => varint(buf).map(|_| (key >> 3, None)),
            1 => take(buf, 8).map(|_| (key >> 3, None)),
            2 => {
                let len = usize::try_from(varint(buf)?).map_err(|_| malformed("length"))?;
                take(buf, len).map(|body| (key >> 3, Some(body)))
            }
            5 => take(buf, 4).map(|_| (key >> 3, None)),
            // Groups (3, 4) and 6, 7 appear in no Bitswap schema.
            _ => Err(malformed("unexpected wire type")),
        }
    }

    /// Fails if the message holds more wants, blocks or presences than the
    /// caps allow. Wantlist fields are counted across repeats, since protobuf
    /// merges repeated occurrences of a message field.
    pub(super) fn check_caps(mut body: &[u8]) -> Result<(), BitswapError> {
        let (mut wants, mut blocks, mut presences) = (0usize, 0usize, 0usize);
        while !body.is_empty() {
            match field(&mut body)? {
                (1, Some(mut wantlist)) => {
                    while !wantlist.is_empty() {
                        if let (1, Some(_)) = field(&mut wantlist)? {
                            wants += 1;
                            check_count("wantlist entries", wants, MAX_WANTS_PER_MESSAGE)?;
                        }
                    }
                }
                (2 | 3, Some(_)) => {
                    blocks += 1;
                    check_count("blocks", blocks, MAX_BLOCKS_PER_MESSAGE)?;
                }
                (4, Some(_)) => {
                    presences += 1;
                    check_count("block presences", presences, MAX_PRESENCES_PER_MESSAGE)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
