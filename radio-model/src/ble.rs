//! Airtime model of one BLE connection: PHY, data length extension, ATT MTU, connection interval and the
//! packets that fit in one connection event.
//!
//! The model follows the Bluetooth Core Specification 5.3:
//! - packet = preamble (1 B on LE 1M, 2 B on LE 2M) + access address 4 B + LL header 2 B + payload + CRC 3 B
//!   (Vol 6 Part B §2.1); unencrypted links, because Pollen encrypts above the link with Noise;
//! - packets in a connection event alternate central → peripheral → central …, separated by T_IFS = 150 µs
//!   (Vol 6 Part B §4.1.1), and the event must end before the next anchor point (§4.5.1);
//! - LL data payload is 27 B without and 251 B with the LE Data Length Extension (§2.4.2.21);
//! - an L2CAP PDU has a 4 B basic header (Vol 3 Part A §3.1), an ATT Write Command or Handle Value Notification a
//!   3 B header (Vol 3 Part F §3.4.5.3, §3.4.7.1), and the first K-frame of an LE CoC SDU a 2 B SDU length (§3.4.2).
//!
//! With those rules the continuous (event-boundary-free) limits come out at the figures in `shared/DESIGN.md`:
//! GATT ≈ 791 kbit/s on 1M and ≈ 1402 kbit/s on 2M with DLE, ≈ 237 kbit/s without DLE, L2CAP CoC ≈ 1443 kbit/s on 2M.
//! [`LinkParams::capacity_bps`] adds the loss at connection-event boundaries for the configured interval, which is
//! what a real link (and the sim medium) achieves.

use std::time::Duration;

use thiserror::Error;

/// Inter-frame space between two packets of a connection event, in µs (Core 5.3 Vol 6 Part B §4.1.1).
pub const T_IFS_US: u32 = 150;
/// Largest LL data payload without the Data Length Extension.
pub const LL_PAYLOAD_LEGACY: usize = 27;
/// Largest LL data payload with the Data Length Extension.
pub const LL_PAYLOAD_DLE: usize = 251;
/// L2CAP basic header: length (2) + channel id (2).
pub const L2CAP_HEADER: usize = 4;
/// ATT Write Command / Handle Value Notification header: opcode (1) + handle (2).
pub const ATT_HEADER: usize = 3;
/// SDU length field in the first K-frame of an LE credit-based SDU.
pub const SDU_LENGTH_FIELD: usize = 2;
/// The ATT MTU every link starts with; a value at or below it means "not negotiated".
pub const ATT_MTU_DEFAULT: u16 = 23;
/// The largest ATT MTU phones negotiate (Android requests 517).
pub const ATT_MTU_MAX: u16 = 517;
/// Connection interval granularity (Core 5.3 Vol 6 Part B §4.5.1): 1.25 ms steps from 7.5 ms to 4 s.
pub const CONN_INTERVAL_STEP_US: u32 = 1_250;
const CONN_INTERVAL_MIN_US: u32 = 7_500;
const CONN_INTERVAL_MAX_US: u32 = 4_000_000;
/// Access address (4) + LL header (2) + CRC (3).
const PACKET_FIXED_BYTES: usize = 4 + 2 + 3;

/// Default L2CAP CoC MPS of the model: one K-frame (4 B header + 1000 B) fills exactly four DLE LL packets, so the
/// CoC path loses nothing to partial packets and its capacity sits at the physical figure.
pub const L2CAP_MPS_DEFAULT: u16 = 1_000;

/// The LE physical layer a link runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phy {
    /// LE 1M: 1 Mbit/s, 1-byte preamble.
    Le1M,
    /// LE 2M: 2 Mbit/s, 2-byte preamble.
    Le2M,
}

impl Phy {
    fn preamble_bytes(self) -> usize {
        match self {
            Phy::Le1M => 1,
            Phy::Le2M => 2,
        }
    }

    fn bits_per_us(self) -> usize {
        match self {
            Phy::Le1M => 1,
            Phy::Le2M => 2,
        }
    }

    /// Short name used in reports (`1M`, `2M`).
    pub fn label(self) -> &'static str {
        match self {
            Phy::Le1M => "1M",
            Phy::Le2M => "2M",
        }
    }
}

/// Which bearer of a BLE link carries data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bearer {
    /// GATT: ATT Write Commands (central → peripheral) and Handle Value Notifications (peripheral → central).
    Gatt,
    /// An LE credit-based connection-oriented L2CAP channel.
    L2capCoc,
}

impl Bearer {
    /// Short name used in reports (`gatt`, `l2cap`).
    pub fn label(self) -> &'static str {
        match self {
            Bearer::Gatt => "gatt",
            Bearer::L2capCoc => "l2cap",
        }
    }
}

/// Airtime of one LL data packet carrying `payload` bytes (0 for an empty PDU), in µs.
pub fn packet_airtime_us(phy: Phy, payload: usize) -> u32 {
    let bytes = phy.preamble_bytes() + PACKET_FIXED_BYTES + payload;
    (bytes * 8 / phy.bits_per_us()) as u32
}

/// Airtime of one exchange: a central packet, T_IFS, the peripheral's answer, T_IFS.
pub fn exchange_airtime_us(phy: Phy, central_payload: usize, peripheral_payload: usize) -> u32 {
    packet_airtime_us(phy, central_payload) + T_IFS_US + packet_airtime_us(phy, peripheral_payload) + T_IFS_US
}

/// A link parameter outside what the specification allows.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ModelError {
    /// ATT MTU outside 23..=517.
    #[error("ATT MTU {0} is outside 23..=517")]
    AttMtu(u16),
    /// Connection interval not a multiple of 1.25 ms in 7.5 ms..=4 s.
    #[error("connection interval {0:?} is not a multiple of 1.25 ms in 7.5 ms..=4 s")]
    ConnInterval(Duration),
    /// An L2CAP MPS below the LE minimum of 23.
    #[error("L2CAP MPS {0} is below the minimum of 23")]
    Mps(u16),
    /// A cap of zero packets per connection event.
    #[error("a connection event must allow at least one exchange")]
    ZeroExchanges,
}

/// The parameters of one established BLE connection that decide its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    phy: Phy,
    dle: bool,
    att_mtu: u16,
    conn_interval_us: u32,
    max_exchanges_per_event: Option<u16>,
    l2cap_mps: u16,
}

impl LinkParams {
    /// A link with the given PHY, DLE, ATT MTU and connection interval; connection events may run until the next
    /// anchor point and the L2CAP MPS is [`L2CAP_MPS_DEFAULT`].
    pub fn new(phy: Phy, dle: bool, att_mtu: u16, conn_interval: Duration) -> Result<Self, ModelError> {
        if !(ATT_MTU_DEFAULT..=ATT_MTU_MAX).contains(&att_mtu) {
            return Err(ModelError::AttMtu(att_mtu));
        }
        let us = u32::try_from(conn_interval.as_micros()).map_err(|_| ModelError::ConnInterval(conn_interval))?;
        if !(CONN_INTERVAL_MIN_US..=CONN_INTERVAL_MAX_US).contains(&us) || us % CONN_INTERVAL_STEP_US != 0 {
            return Err(ModelError::ConnInterval(conn_interval));
        }
        Ok(Self {
            phy,
            dle,
            att_mtu,
            conn_interval_us: us,
            max_exchanges_per_event: None,
            l2cap_mps: L2CAP_MPS_DEFAULT,
        })
    }

    /// Caps the exchanges (packet pairs) per connection event, as some controllers and iOS do.
    pub fn with_max_exchanges_per_event(mut self, max: Option<u16>) -> Result<Self, ModelError> {
        if max == Some(0) {
            return Err(ModelError::ZeroExchanges);
        }
        self.max_exchanges_per_event = max;
        Ok(self)
    }

    /// Sets the L2CAP CoC maximum PDU payload size.
    pub fn with_l2cap_mps(mut self, mps: u16) -> Result<Self, ModelError> {
        if mps < 23 {
            return Err(ModelError::Mps(mps));
        }
        self.l2cap_mps = mps;
        Ok(self)
    }

    /// Same link with another ATT MTU (for example after an MTU exchange).
    pub fn with_att_mtu(self, att_mtu: u16) -> Result<Self, ModelError> {
        Self { att_mtu, ..self }.validated()
    }

    fn validated(self) -> Result<Self, ModelError> {
        Self::new(self.phy, self.dle, self.att_mtu, self.conn_interval())?
            .with_max_exchanges_per_event(self.max_exchanges_per_event)?
            .with_l2cap_mps(self.l2cap_mps)
    }

    /// The PHY.
    pub fn phy(&self) -> Phy {
        self.phy
    }

    /// Whether the Data Length Extension is in use.
    pub fn dle(&self) -> bool {
        self.dle
    }

    /// The negotiated ATT MTU.
    pub fn att_mtu(&self) -> u16 {
        self.att_mtu
    }

    /// The connection interval.
    pub fn conn_interval(&self) -> Duration {
        Duration::from_micros(u64::from(self.conn_interval_us))
    }

    /// The cap on exchanges per connection event, if any.
    pub fn max_exchanges_per_event(&self) -> Option<u16> {
        self.max_exchanges_per_event
    }

    /// The L2CAP CoC MPS.
    pub fn l2cap_mps(&self) -> u16 {
        self.l2cap_mps
    }

    /// Largest LL data payload on this link.
    pub fn ll_payload_max(&self) -> usize {
        if self.dle {
            LL_PAYLOAD_DLE
        } else {
            LL_PAYLOAD_LEGACY
        }
    }

    /// Bytes of application data in one GATT write or notification: ATT MTU − 3.
    pub fn att_payload(&self) -> usize {
        usize::from(self.att_mtu) - ATT_HEADER
    }

    /// Largest L2CAP SDU the model sends as one K-frame: MPS − 2 (the SDU length field).
    pub fn l2cap_sdu_max(&self) -> usize {
        usize::from(self.l2cap_mps) - SDU_LENGTH_FIELD
    }

    /// LL payload sizes of one ATT PDU carrying a full `att_payload()` write.
    pub fn gatt_pdu_fragments(&self) -> Vec<usize> {
        self.gatt_value_fragments(self.att_payload())
    }

    /// LL payload sizes of one ATT Write Command or notification carrying `value_len` bytes.
    pub fn gatt_value_fragments(&self, value_len: usize) -> Vec<usize> {
        split(value_len + ATT_HEADER + L2CAP_HEADER, self.ll_payload_max())
    }

    /// LL payload sizes of one L2CAP SDU of `sdu` bytes: K-frames of at most MPS, each split into LL packets.
    pub fn l2cap_sdu_fragments(&self, sdu: usize) -> Vec<usize> {
        let mps = usize::from(self.l2cap_mps);
        let mut left = sdu + SDU_LENGTH_FIELD;
        let mut out = Vec::new();
        while left > 0 {
            let k = left.min(mps);
            out.extend(split(k + L2CAP_HEADER, self.ll_payload_max()));
            left -= k;
        }
        out
    }

    /// Whether an exchange of `exchange_us` fits into a connection event that has used `elapsed_us` and
    /// `exchanges_done` so far. The sim medium and [`Self::capacity_bps`] both schedule with this rule.
    pub fn exchange_fits(&self, elapsed_us: u32, exchanges_done: u32, exchange_us: u32) -> bool {
        let under_cap = self.max_exchanges_per_event.is_none_or(|max| exchanges_done < u32::from(max));
        under_cap && elapsed_us + exchange_us <= self.conn_interval_us
    }

    /// Airtime-limited application goodput of the bearer in bit/s, when one side sends as fast as the link allows,
    /// the other answers with empty packets, and events end at the next anchor point (or the exchange cap).
    pub fn capacity_bps(&self, bearer: Bearer) -> f64 {
        let (pattern, app_bytes) = self.saturated_pattern(bearer);
        let mut first_seen: Vec<Option<(u64, u64)>> = vec![None; pattern.len()];
        let (mut idx, mut sent, mut event) = (0usize, 0u64, 0u64);
        // The pattern position at the start of an event determines the event, so the sequence of start positions
        // becomes periodic within `pattern.len()` events; the average over one period is exact.
        loop {
            if let Some((event0, sent0)) = first_seen[idx] {
                let units = (sent - sent0) / pattern.len() as u64;
                let us = (event - event0) * u64::from(self.conn_interval_us);
                return (units * app_bytes as u64 * 8) as f64 / us as f64 * 1e6;
            }
            first_seen[idx] = Some((event, sent));
            let (mut elapsed, mut done) = (0u32, 0u32);
            loop {
                let ex = exchange_airtime_us(self.phy, pattern[idx], 0);
                if !self.exchange_fits(elapsed, done, ex) {
                    break;
                }
                elapsed += ex;
                done += 1;
                sent += 1;
                idx = (idx + 1) % pattern.len();
            }
            event += 1;
        }
    }

    /// The same figure without connection-event boundaries: the pure airtime limit a very long event approaches.
    /// These are the "physical application limits" quoted in `shared/DESIGN.md`.
    pub fn continuous_capacity_bps(&self, bearer: Bearer) -> f64 {
        let (pattern, app_bytes) = self.saturated_pattern(bearer);
        let us: u64 = pattern.iter().map(|&p| u64::from(exchange_airtime_us(self.phy, p, 0))).sum();
        (app_bytes * 8) as f64 / us as f64 * 1e6
    }

    fn saturated_pattern(&self, bearer: Bearer) -> (Vec<usize>, usize) {
        match bearer {
            Bearer::Gatt => (self.gatt_pdu_fragments(), self.att_payload()),
            Bearer::L2capCoc => {
                let sdu = self.l2cap_sdu_max();
                (self.l2cap_sdu_fragments(sdu), sdu)
            }
        }
    }

    /// Round-trip time of a small message on an established, idle link. A packet sent in one connection event is
    /// answered, at the earliest, in the next one: a host cannot turn data around within T_IFS.
    pub fn rtt(&self) -> Duration {
        self.conn_interval()
    }
}

fn split(len: usize, max: usize) -> Vec<usize> {
    let mut out = vec![max; len / max];
    if !len.is_multiple_of(max) {
        out.push(len % max);
    }
    out
}

/// Distribution of connection setup time (connect + MTU exchange + service discovery + CCCD write).
///
/// Android measurements quoted in `shared/DESIGN.md`: 389 ms best, 867 ms average, 3 s worst. The model is the best
/// case plus an exponential tail truncated at the worst case, with the tail's mean solved so the overall mean is 867 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetupLatency {
    /// Fastest setup.
    pub best: Duration,
    /// Mean setup.
    pub mean: Duration,
    /// Slowest setup.
    pub worst: Duration,
}

impl SetupLatency {
    /// The Android figures from `shared/DESIGN.md`.
    pub const ANDROID: SetupLatency = SetupLatency {
        best: Duration::from_millis(389),
        mean: Duration::from_millis(867),
        worst: Duration::from_millis(3_000),
    };

    /// Maps a uniform sample `u` in [0, 1) to a setup time (inverse CDF of the truncated exponential).
    pub fn sample(&self, u: f64) -> Duration {
        let span = (self.worst - self.best).as_secs_f64();
        let theta = self.tail_scale();
        let u = u.clamp(0.0, 1.0 - f64::EPSILON);
        let x = -theta * (1.0 - u * (1.0 - (-span / theta).exp())).ln();
        self.best + Duration::from_secs_f64(x.min(span))
    }

    /// Scale of the exponential tail that gives the configured mean once truncated at `worst`.
    fn tail_scale(&self) -> f64 {
        let span = (self.worst - self.best).as_secs_f64();
        let target = (self.mean - self.best).as_secs_f64();
        let truncated_mean = |theta: f64| {
            let e = (-span / theta).exp();
            theta - span * e / (1.0 - e)
        };
        // The truncated mean grows monotonically with theta: bisect.
        let (mut lo, mut hi) = (target * 0.5, span * 10.0);
        for _ in 0..100 {
            let mid = (lo + hi) / 2.0;
            if truncated_mean(mid) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo + hi) / 2.0
    }
}

/// Android `ScanSettings` scan modes: (window, interval) from AOSP's `ScanManager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// 512 ms window every 5120 ms.
    LowPower,
    /// 1024 ms window every 4096 ms.
    Balanced,
    /// Continuous: 4096 ms window every 4096 ms.
    LowLatency,
}

impl ScanMode {
    /// (scan window, scan interval).
    pub fn window_interval(self) -> (Duration, Duration) {
        let ms = Duration::from_millis;
        match self {
            ScanMode::LowPower => (ms(512), ms(5_120)),
            ScanMode::Balanced => (ms(1_024), ms(4_096)),
            ScanMode::LowLatency => (ms(4_096), ms(4_096)),
        }
    }
}

/// Android `AdvertiseSettings` modes and their advertising intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvertiseMode {
    /// 1 s.
    LowPower,
    /// 250 ms.
    Balanced,
    /// 100 ms.
    LowLatency,
}

impl AdvertiseMode {
    /// The advertising interval (each event adds 0–10 ms of random advDelay, Core 5.3 Vol 6 Part B §4.4.2.2.1).
    pub fn interval(self) -> Duration {
        match self {
            AdvertiseMode::LowPower => Duration::from_millis(1_000),
            AdvertiseMode::Balanced => Duration::from_millis(250),
            AdvertiseMode::LowLatency => Duration::from_millis(100),
        }
    }
}

#[cfg(test)]
mod tests;
