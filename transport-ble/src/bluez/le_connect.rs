//! Bringing an LE connection up when the peer may be connecting to us at the same moment.
//!
//! Two nodes that hear each other's advertisement in the same instant dial each other in the same instant. Linux
//! pauses a node's advertising while it initiates, so two Create Connections sent together find no advertiser:
//! on a radio both run until the kernel cancels them; on the emulated controller both fail at once (status 0x3e),
//! and Linux 6.1 can then stay wedged, issuing no Create Connection for any later connect until a power cycle (the
//! virtual lab's NOTES, finding 16). So the two first attempts are kept apart: the node with the lower address
//! waits [`DIAL_STAGGER`] (plus jitter) before its first attempt, watching for the peer's connection, which is
//! usually up by then. When the two disagree on which is lower (a private address), the attempts can still meet:
//! a hung attempt is cancelled, then the node with the lower address waits long enough for the other's retry to
//! land, so the two retries cannot meet again.
//!
//! When the peer's connection came up instead, the dial gives way to it, but only once that connection carries a
//! link to us (the peer subscribed to our TX characteristic). If it drops without one (the peer's setup failed), we
//! connect again ourselves, so one failed side cannot fail both dials.
//!
//! Often both `Connect` calls succeed on the one LE connection the controllers made, and each node goes on to be
//! GATT central on it. Two Pollen links on one connection are resolved by the link session's tie-break, but BlueZ
//! breaks them first: while bluetoothd acquires the peripheral app's write socket for a central's first Write
//! Request, it keeps the value by pointer into the connection's ATT receive buffer, and any PDU arriving meanwhile
//! (here the same peer's notifications or responses, as GATT server of the other link) overwrites it (seen in the
//! virtual lab: "header declares 768 payload bytes, 17 arrived"; the tie-break then closed the other link, and both
//! dials failed). [`gives_way`] keeps one GATT central per connection.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use bluer::Address;
use rand::RngExt;
use tokio::time::Instant;

use crate::driver::ConnectError;

/// One LE connection attempt gets this long before it is cancelled and retried (normally it takes 0.03-1 s).
const LE_CONNECT_ATTEMPT: Duration = Duration::from_secs(8);
/// After a collision, how long the peer's own connection gets to become a link before we connect again.
const PEER_LINK_GRACE: Duration = Duration::from_secs(8);
/// How often a wait for the peer's connection looks at the device.
const PEER_POLL: Duration = Duration::from_millis(100);
/// How long the node with the lower address waits before its first attempt, so that a peer dialling us at the same
/// moment has its connection up first (a connect takes 0.03-1 s under emulation); up to [`STAGGER_JITTER`] more.
const DIAL_STAGGER: Duration = Duration::from_millis(1500);
/// The random part of the stagger, so that two nodes that both think they are the lower one still drift apart.
const STAGGER_JITTER: Duration = Duration::from_millis(500);

/// What [`connect_le`] needs of a remote device (BlueZ's `org.bluez.Device1`).
pub(super) trait LeDevice {
    /// The platform's error.
    type Error: Display;
    /// Connects (BlueZ `Connect`); resolves when the connection is up.
    fn connect(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Whether an LE connection to the device is up, whoever made it.
    fn is_connected(&self) -> impl Future<Output = bool> + Send;
    /// Drops the connection or cancels a pending attempt.
    fn disconnect(&self) -> impl Future<Output = ()> + Send;
}

impl LeDevice for bluer::Device {
    type Error = bluer::Error;

    fn connect(&self) -> impl Future<Output = Result<(), bluer::Error>> + Send {
        bluer::Device::connect(self)
    }

    async fn is_connected(&self) -> bool {
        bluer::Device::is_connected(self).await.unwrap_or(false)
    }

    async fn disconnect(&self) {
        let _ = bluer::Device::disconnect(self).await;
    }
}

/// Brings the LE connection from `own` to `peer` up. `Ok` means our attempt made it; an error saying the peer
/// connected first means `has_link` turned true (the peer's connection carries the link) and our dial gives way.
pub(super) async fn connect_le<D: LeDevice>(
    dev: &D,
    own: Address,
    peer: Address,
    has_link: impl Fn() -> bool,
) -> Result<(), ConnectError> {
    if own < peer && !dev.is_connected().await {
        let stagger = DIAL_STAGGER + STAGGER_JITTER.mul_f64(rand::rng().random::<f64>());
        tracing::debug!(device = %peer, ?stagger, "lower address: letting a simultaneous dial by the peer go first");
        if connects_within(dev, stagger).await && link_within(dev, &has_link, PEER_LINK_GRACE).await {
            return Err(peer_connected_first());
        }
    }
    loop {
        tracing::debug!(device = %peer, "LE connect");
        let hung = match tokio::time::timeout(LE_CONNECT_ATTEMPT, dev.connect()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) if !dev.is_connected().await => return Err(ConnectError::Platform(e.to_string())),
            Ok(Err(e)) => {
                tracing::debug!(device = %peer, error = %e, "LE connect refused while the peer connected to us");
                false
            }
            Err(_) => true,
        };
        if hung && !dev.is_connected().await {
            dev.disconnect().await;
            let backoff = collision_backoff(own, peer);
            tracing::debug!(device = %peer, ?backoff, "LE connect hung; retrying");
            if !connects_within(dev, backoff).await {
                continue;
            }
        }
        if link_within(dev, &has_link, PEER_LINK_GRACE).await {
            return Err(peer_connected_first());
        }
        tracing::debug!(device = %peer, "the peer's connection ended without a link; connecting ourselves");
    }
}

/// The error of a dial that gave way to the peer's own connection.
pub(super) fn peer_connected_first() -> ConnectError {
    ConnectError::Platform("the peer connected to us first".into())
}

/// Whether the device connects to us within `wait`.
async fn connects_within<D: LeDevice>(dev: &D, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        tokio::time::sleep(PEER_POLL).await;
        if dev.is_connected().await {
            return true;
        }
    }
    false
}

/// Whether the device's connection to us becomes a link within `grace`; false as soon as the connection drops.
async fn link_within<D: LeDevice>(dev: &D, has_link: &impl Fn() -> bool, grace: Duration) -> bool {
    let deadline = Instant::now() + grace;
    loop {
        if has_link() {
            return true;
        }
        if Instant::now() >= deadline || !dev.is_connected().await {
            return false;
        }
        tokio::time::sleep(PEER_POLL).await;
    }
}

/// How long after its connection came up the node with the lower address watches for the peer's own GATT client
/// before subscribing as central itself (service discovery, ~0.1-1 s, runs inside this time).
pub(super) const SHARED_CONNECTION_SETTLE: Duration = Duration::from_millis(1500);

/// Whether a node that just connected should leave the connection to the peer's GATT client instead of becoming
/// central on it: when the peer already subscribed to us (`has_link`). The node with the lower address also waits
/// until `settle_until` for that to happen, so when both nodes connected at once the higher one subscribes and the
/// lower one gives way. A node that subscribed never gives way later, so the two cannot both give way.
pub(super) async fn gives_way(own: Address, peer: Address, settle_until: Instant, has_link: impl Fn() -> bool) -> bool {
    loop {
        if has_link() {
            tracing::debug!(device = %peer, "the peer is GATT central on this connection already; giving way");
            return true;
        }
        if own > peer || Instant::now() >= settle_until {
            return false;
        }
        tokio::time::sleep(PEER_POLL).await;
    }
}

/// The wait before retrying a hung connect. Both nodes of a collision time out at about the same moment, so the
/// tie is broken by address: the higher one retries soon, the lower one waits until that retry has had time to
/// land (a connect takes 0.03-1 s under emulation). Jitter keeps several peers from lining up on one node.
fn collision_backoff(own: Address, peer: Address) -> Duration {
    let jitter = Duration::from_millis(rand::rng().random_range(0..500));
    if own > peer {
        Duration::from_millis(250) + jitter
    } else {
        Duration::from_millis(2500) + jitter
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Two controllers on one medium, with the emulated controllers' collision: two attempts pending at the same
    /// time both hang until cancelled. A lone attempt connects after `SETUP`.
    #[derive(Default)]
    struct Air {
        pending: [bool; 2],
        collided: bool,
        connected: bool,
        /// Attempts started, per side.
        attempts: [u32; 2],
    }

    const SETUP: Duration = Duration::from_millis(50);

    struct FakeDevice {
        air: Arc<Mutex<Air>>,
        /// The side that holds this handle (the device is the other side).
        me: usize,
    }

    impl FakeDevice {
        fn air(&self) -> std::sync::MutexGuard<'_, Air> {
            self.air.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl LeDevice for FakeDevice {
        type Error = &'static str;

        async fn connect(&self) -> Result<(), &'static str> {
            {
                let mut air = self.air();
                air.attempts[self.me] += 1;
                if air.connected {
                    return Err("Operation already in progress");
                }
                air.pending[self.me] = true;
                if air.pending[1 - self.me] {
                    air.collided = true;
                }
            }
            tokio::time::sleep(SETUP).await;
            {
                let mut air = self.air();
                if !air.collided && air.pending[self.me] {
                    air.pending[self.me] = false;
                    air.connected = true;
                    return Ok(());
                }
            }
            std::future::pending().await
        }

        async fn is_connected(&self) -> bool {
            self.air().connected
        }

        async fn disconnect(&self) {
            let mut air = self.air();
            air.pending[self.me] = false;
            air.collided &= air.pending.iter().any(|p| *p);
            air.connected = false;
        }
    }

    fn address(last: u8) -> Address {
        Address::new([0, 0xAA, 1, 0, 0, last])
    }

    #[tokio::test(start_paused = true)]
    async fn colliding_dials_end_with_one_connection() {
        let air = Arc::new(Mutex::new(Air::default()));
        let (a, b) = (FakeDevice { air: air.clone(), me: 0 }, FakeDevice { air: air.clone(), me: 1 });
        let connected = || air.lock().map(|a| a.connected).unwrap_or(false);
        let start = Instant::now();
        let (ra, rb) = tokio::join!(
            connect_le(&a, address(0), address(1), connected),
            connect_le(&b, address(1), address(0), connected),
        );
        // The higher address connected at once; the lower one never sent its own attempt and gave way.
        assert!(ra.is_err_and(|e| e.to_string().contains("connected to us first")));
        assert!(rb.is_ok());
        let air = air.lock().unwrap_or_else(|p| p.into_inner());
        assert!(air.connected);
        assert_eq!(air.attempts, [0, 1]);
        assert!(start.elapsed() < DIAL_STAGGER, "{:?}", start.elapsed());
    }

    /// With private addresses each node can see the other as the higher one; then both attempts go out together and
    /// collide, and the retries after the cancel must still end with one connection.
    #[tokio::test(start_paused = true)]
    async fn dials_that_collide_anyway_end_with_one_connection() {
        for _ in 0..20 {
            let air = Arc::new(Mutex::new(Air::default()));
            let (a, b) = (FakeDevice { air: air.clone(), me: 0 }, FakeDevice { air: air.clone(), me: 1 });
            let connected = || air.lock().map(|a| a.connected).unwrap_or(false);
            let (ra, rb) = tokio::join!(
                connect_le(&a, address(1), address(0), connected),
                connect_le(&b, address(1), address(0), connected),
            );
            assert!(ra.is_ok() != rb.is_ok(), "{ra:?} {rb:?}");
            let air = air.lock().unwrap_or_else(|p| p.into_inner());
            assert!(air.connected);
            let [x, y] = air.attempts;
            assert!(x >= 1 && y >= 1 && x + y >= 3, "the first attempts collided, then a retry won: {x}, {y}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_dial_from_the_lower_address_waits_only_the_stagger() {
        let air = Arc::new(Mutex::new(Air::default()));
        let dev = FakeDevice { air: air.clone(), me: 0 };
        let start = Instant::now();
        let result = connect_le(&dev, address(0), address(1), || false).await;
        assert!(result.is_ok(), "{result:?}");
        let elapsed = start.elapsed();
        assert!(elapsed >= DIAL_STAGGER + SETUP, "{elapsed:?}");
        assert!(elapsed <= DIAL_STAGGER + STAGGER_JITTER + PEER_POLL + SETUP, "{elapsed:?}");
        assert_eq!(air.lock().unwrap_or_else(|p| p.into_inner()).attempts, [1, 0]);
        let start = Instant::now();
        let air = Arc::new(Mutex::new(Air::default()));
        let result = connect_le(&FakeDevice { air, me: 0 }, address(1), address(0), || false).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(start.elapsed(), SETUP, "the higher address dials at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_connection_without_a_link_does_not_fail_the_dial() {
        let air = Arc::new(Mutex::new(Air { connected: true, ..Air::default() }));
        let dev = FakeDevice { air: air.clone(), me: 0 };
        let dropper = air.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            dropper.lock().unwrap_or_else(|p| p.into_inner()).connected = false;
        });
        let result = connect_le(&dev, address(0), address(1), || false).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(air.lock().unwrap_or_else(|p| p.into_inner()).attempts, [2, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connect_to_an_absent_device_fails_at_once() {
        struct Refusing;
        impl LeDevice for Refusing {
            type Error = &'static str;
            async fn connect(&self) -> Result<(), &'static str> {
                Err("Page Timeout")
            }
            async fn is_connected(&self) -> bool {
                false
            }
            async fn disconnect(&self) {}
        }
        let result = connect_le(&Refusing, address(0), address(1), || false).await;
        assert!(result.is_err_and(|e| e.to_string().contains("Page Timeout")));
    }

    /// Two nodes that both connected: each discovers services for `discovery`, asks `gives_way`, and if it does
    /// not give way subscribes, which the other sees as a link `propagation` later. Exactly one must subscribe.
    async fn both_connected(discovery: [Duration; 2], propagation: Duration) -> [bool; 2] {
        let subscribed_at: Arc<Mutex<[Option<Instant>; 2]>> = Arc::default();
        let start = Instant::now();
        let node = |me: usize| {
            let subscribed_at = subscribed_at.clone();
            async move {
                let settle_until = Instant::now() + SHARED_CONNECTION_SETTLE;
                tokio::time::sleep(discovery[me]).await;
                let peer_link = || {
                    let at = subscribed_at.lock().map(|s| s[1 - me]).unwrap_or(None);
                    at.is_some_and(|t| Instant::now() >= t + propagation)
                };
                let gave_way = gives_way(address(me as u8), address(1 - me as u8), settle_until, peer_link).await;
                if !gave_way {
                    if let Ok(mut s) = subscribed_at.lock() {
                        s[me] = Some(Instant::now());
                    }
                }
                !gave_way
            }
        };
        let (a, b) = tokio::join!(node(0), node(1));
        assert!(start.elapsed() <= SHARED_CONNECTION_SETTLE + Duration::from_secs(1));
        [a, b]
    }

    #[tokio::test(start_paused = true)]
    async fn one_gatt_central_per_shared_connection() {
        let ms = Duration::from_millis;
        for (discovery, propagation) in [
            ([ms(100), ms(100)], ms(30)),
            ([ms(900), ms(100)], ms(30)),
            ([ms(100), ms(900)], ms(200)),
            ([ms(0), ms(0)], ms(0)),
            ([ms(1000), ms(1000)], ms(100)),
        ] {
            let subscribed = both_connected(discovery, propagation).await;
            assert_eq!(subscribed.iter().filter(|s| **s).count(), 1, "{discovery:?} {propagation:?}: {subscribed:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_central_subscribes_after_the_settle_time_at_most() {
        let start = Instant::now();
        assert!(!gives_way(address(1), address(0), start + SHARED_CONNECTION_SETTLE, || false).await);
        assert_eq!(start.elapsed(), Duration::ZERO, "the higher address does not wait");
        assert!(!gives_way(address(0), address(1), start + SHARED_CONNECTION_SETTLE, || false).await);
        assert!(start.elapsed() >= SHARED_CONNECTION_SETTLE);
        assert!(start.elapsed() < SHARED_CONNECTION_SETTLE + PEER_POLL * 2);
    }

    #[test]
    fn the_lower_address_waits_past_the_higher_ones_retry() {
        for _ in 0..100 {
            let low = collision_backoff(address(0), address(1));
            let high = collision_backoff(address(1), address(0));
            assert!(low >= high + Duration::from_secs(1), "{low:?} vs {high:?}");
        }
    }
}
