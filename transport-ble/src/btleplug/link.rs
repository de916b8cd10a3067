//! Per-link I/O: the bounded send queue, the writer task that drains it, the notification reader and the MTU watch.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use btleplug::api::{CharPropFlags, Characteristic, Peripheral as _, ValueNotification, WriteType};
use btleplug::platform::Peripheral;
use futures::{Stream, StreamExt};
use pollen_radio_model::ble::{ATT_HEADER, ATT_MTU_DEFAULT};
use tokio::sync::mpsc;

use super::{lock, Shared, SEND_QUEUE};
use crate::driver::{Bearer, DisconnectReason, DriverEvent, LinkId, SendError, TX_CHARACTERISTIC_UUID};

/// How often a link asks btleplug for the ATT MTU again (it can change after connecting on macOS and Windows).
const MTU_POLL: Duration = Duration::from_secs(1);

/// Notifications of one peripheral, as btleplug delivers them.
pub(super) type Notifications = Pin<Box<dyn Stream<Item = ValueNotification> + Send>>;

/// Largest GATT value for an ATT MTU (≤ 23 counts as 23).
pub(super) fn max_value(att_mtu: u16) -> usize {
    usize::from(att_mtu.max(ATT_MTU_DEFAULT)) - ATT_HEADER
}

/// The sending half of a link: the ATT MTU the values are sized to and the bounded queue the writer task drains.
pub(crate) struct SendQueue {
    /// ATT MTU as btleplug reports it (≤ 23: unknown).
    pub(crate) att_mtu: u16,
    queue: mpsc::Sender<Vec<u8>>,
    /// A `SendReady` is owed once the queue has room.
    waiting: bool,
}

impl SendQueue {
    /// A queue of [`SEND_QUEUE`] values and the receiver its writer drains.
    pub(super) fn new(att_mtu: u16) -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (queue, values) = mpsc::channel(SEND_QUEUE);
        (Self { att_mtu, queue, waiting: false }, values)
    }

    /// Queues one GATT value; on a full queue, reports busy and arranges one `SendReady` for when a slot frees.
    pub(super) fn send(
        &mut self,
        link: LinkId,
        data: &[u8],
        events: &mpsc::UnboundedSender<DriverEvent>,
    ) -> Result<(), SendError> {
        let max = max_value(self.att_mtu);
        if data.len() > max {
            return Err(SendError::TooLarge { len: data.len(), max });
        }
        match self.queue.try_send(data.to_vec()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.waiting {
                    self.waiting = true;
                    let (queue, events) = (self.queue.clone(), events.clone());
                    tokio::spawn(async move {
                        if queue.reserve().await.is_ok() {
                            let _ = events.send(DriverEvent::SendReady { link, bearer: Bearer::Gatt });
                        }
                    });
                }
                Err(SendError::Busy)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::NoSuchLink),
        }
    }

    /// The owed `SendReady` was delivered.
    pub(super) fn ready(&mut self) {
        self.waiting = false;
    }
}

/// Ends a link once: removes it (which stops its tasks) and reports why.
pub(super) fn link_down(
    shared: &Mutex<Shared>,
    link: LinkId,
    reason: DisconnectReason,
    events: &mpsc::UnboundedSender<DriverEvent>,
) {
    let removed = lock(shared).links.remove(&link);
    if removed.is_some() {
        let _ = events.send(DriverEvent::Disconnected { link, reason });
    }
}

/// Everything a link's tasks need.
pub(super) struct LinkIo {
    pub(super) shared: Arc<Mutex<Shared>>,
    pub(super) link: LinkId,
    pub(super) peripheral: Peripheral,
    pub(super) rx: Characteristic,
    pub(super) att_mtu: u16,
    /// Pause after the link's first write; see [`first_write_hold`].
    pub(super) hold: Duration,
    pub(super) events: mpsc::UnboundedSender<DriverEvent>,
}

/// How long the writer waits after a link's first write before it sends more.
///
/// BlueZ peripherals (every version up to upstream master) corrupt writes that arrive while bluetoothd is still
/// acquiring the application's write socket: `gatt-database.c` queues them by pointer into the ATT receive buffer
/// (`pending_write_new` keeps `value` without copying it), so when `AcquireWrite` returns, each queued write is
/// delivered with its own length but the bytes of the newest PDU. The first write of a link starts that acquisition,
/// so the writer lets it complete before sending the second. Pollen's BlueZ peripheral lets RX take Write Requests
/// for this: the first value goes as one, and its response arrives only once the acquisition is done. Against a
/// peripheral whose RX takes Write Commands only, no GATT event tells the central when it is done, so the writer
/// holds for a time that scales with how slow this link's setup was (connect, discovery, subscription: a quarter of
/// it), within 250 ms and 1 s.
pub(super) fn first_write_hold(setup: Duration) -> Duration {
    (setup / 4).clamp(MIN_FIRST_WRITE_HOLD, MAX_FIRST_WRITE_HOLD)
}

const MIN_FIRST_WRITE_HOLD: Duration = Duration::from_millis(250);
const MAX_FIRST_WRITE_HOLD: Duration = Duration::from_secs(1);

/// Starts the writer, the notification reader and the MTU watch of a link that is already in the shared table.
pub(super) fn start(io: LinkIo, values: mpsc::Receiver<Vec<u8>>, notifications: Notifications) {
    let writer = Writer { shared: io.shared.clone(), link: io.link, peripheral: io.peripheral.clone(), rx: io.rx };
    let tasks = [
        tokio::spawn(writer.run(values, io.hold, io.events.clone())),
        tokio::spawn(reader(io.shared.clone(), io.link, notifications, io.events.clone())),
        tokio::spawn(mtu_watch(io.shared.clone(), io.link, io.peripheral, io.att_mtu, io.events)),
    ];
    let mut shared = lock(&io.shared);
    match shared.links.get_mut(&io.link) {
        Some(tx) => tx.tasks.extend(tasks.iter().map(|t| t.abort_handle())),
        // The link went down meanwhile.
        None => tasks.iter().for_each(|t| t.abort()),
    }
}

/// Writes in flight per link. On Linux each write is one D-Bus method call, sent when its future is first polled;
/// the writer polls every new write once right away, in queue order, so several can wait for their replies while
/// bluetoothd still receives (and sends) them in order. On other platforms btleplug may hand a write to another
/// thread later than its first poll, so writes go one at a time there.
const WRITES_IN_FLIGHT: usize = if cfg!(target_os = "linux") { 4 } else { 1 };

type WriteFuture = Pin<Box<dyn Future<Output = btleplug::Result<()>> + Send>>;

struct Writer {
    shared: Arc<Mutex<Shared>>,
    link: LinkId,
    peripheral: Peripheral,
    rx: Characteristic,
}

impl Writer {
    /// A write without response of `value`, already started (polled once) so its request is on its way; `None` when
    /// it completed at once.
    async fn start(&self, value: Vec<u8>) -> Result<Option<WriteFuture>, ()> {
        tracing::trace!(link = self.link.0, len = value.len(), head = ?value.get(..2), "write");
        let (peripheral, rx) = (self.peripheral.clone(), self.rx.clone());
        let mut write: WriteFuture =
            Box::pin(async move { peripheral.write(&rx, &value, WriteType::WithoutResponse).await });
        match futures::poll!(write.as_mut()) {
            Poll::Pending => Ok(Some(write)),
            Poll::Ready(Err(error)) if queued_anyway(&error) => Ok(None),
            Poll::Ready(result) => self.check(result).map(|()| None),
        }
    }

    fn check(&self, result: btleplug::Result<()>) -> Result<(), ()> {
        result.map_err(|error| tracing::debug!(link = self.link.0, %error, "GATT write failed"))
    }

    /// Writes queued values in order until the link goes away or a write fails (which ends the link).
    async fn run(
        self,
        mut values: mpsc::Receiver<Vec<u8>>,
        hold: Duration,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) {
        if self.write_all(&mut values, hold).await.is_err() {
            link_down(&self.shared, self.link, DisconnectReason::Other("GATT write failed".into()), &events);
        }
    }

    async fn write_all(&self, values: &mut mpsc::Receiver<Vec<u8>>, hold: Duration) -> Result<(), ()> {
        // The first write alone (see `first_write_hold`): a Write Request when the peer's RX takes one, since the
        // response proves the value reached the peripheral application; otherwise a Write Command and the hold.
        let Some(first) = values.recv().await else { return Ok(()) };
        if self.rx.properties.contains(CharPropFlags::WRITE) {
            self.check(self.peripheral.write(&self.rx, &first, WriteType::WithResponse).await)?;
        } else {
            if let Some(write) = self.start(first).await? {
                self.check(write.await)?;
            }
            tokio::time::sleep(hold).await;
        }
        let mut in_flight: VecDeque<WriteFuture> = VecDeque::new();
        loop {
            let room = in_flight.len() < WRITES_IN_FLIGHT;
            let oldest = futures::future::poll_fn(|cx| match in_flight.front_mut() {
                Some(write) => write.as_mut().poll(cx),
                None => Poll::Pending,
            });
            tokio::select! {
                biased;
                result = oldest => {
                    in_flight.pop_front();
                    self.check(result)?;
                }
                value = values.recv(), if room => match value {
                    Some(value) => in_flight.extend(self.start(value).await?),
                    None => break,
                },
            }
        }
        for write in in_flight {
            self.check(write.await)?;
        }
        Ok(())
    }
}

/// Whether a write that failed at once went out all the same. dbus-tokio reports "Failed to send message" when it
/// queued a message but found its I/O task already woken (two sends in a row, or the task running on another thread);
/// the queued message is still sent, so the write is not lost.
fn queued_anyway(error: &btleplug::Error) -> bool {
    cfg!(target_os = "linux") && error.to_string() == "Failed to send message"
}

/// Turns TX notifications into `Received` events.
async fn reader(
    shared: Arc<Mutex<Shared>>,
    link: LinkId,
    mut notifications: Notifications,
    events: mpsc::UnboundedSender<DriverEvent>,
) {
    while let Some(n) = notifications.next().await {
        if n.uuid != TX_CHARACTERISTIC_UUID || n.value.is_empty() {
            continue;
        }
        tracing::trace!(link = link.0, len = n.value.len(), head = ?n.value.get(..2), "notification");
        let event = DriverEvent::Received { link, bearer: Bearer::Gatt, data: n.value.into() };
        if events.send(event).is_err() {
            return;
        }
    }
    // btleplug ends the stream when the peripheral goes away (CoreBluetooth, WinRT).
    link_down(&shared, link, DisconnectReason::Remote, &events);
}

/// Reports MTU changes btleplug learns after the link came up.
async fn mtu_watch(
    shared: Arc<Mutex<Shared>>,
    link: LinkId,
    peripheral: Peripheral,
    mut att_mtu: u16,
    events: mpsc::UnboundedSender<DriverEvent>,
) {
    loop {
        tokio::time::sleep(MTU_POLL).await;
        let now = peripheral.mtu();
        if now == att_mtu {
            continue;
        }
        att_mtu = now;
        match lock(&shared).links.get_mut(&link) {
            Some(tx) => tx.sender.att_mtu = now,
            None => return,
        }
        tracing::debug!(link = link.0, att_mtu, "ATT MTU changed");
        let _ = events.send(DriverEvent::MtuChanged { link, att_mtu });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_write_hold_scales_with_the_setup() {
        assert_eq!(first_write_hold(Duration::from_millis(100)), MIN_FIRST_WRITE_HOLD);
        assert_eq!(first_write_hold(Duration::from_millis(1600)), Duration::from_millis(400));
        assert_eq!(first_write_hold(Duration::from_secs(10)), MAX_FIRST_WRITE_HOLD);
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_until_one_send_ready() {
        let (events, mut seen) = mpsc::unbounded_channel();
        let (mut sender, mut values) = SendQueue::new(185);
        let link = LinkId(7);
        assert_eq!(sender.send(link, &[0; 183], &events), Err(SendError::TooLarge { len: 183, max: 182 }));
        for i in 0..SEND_QUEUE {
            assert_eq!(sender.send(link, &[i as u8; 182], &events), Ok(()));
        }
        assert_eq!(sender.send(link, b"more", &events), Err(SendError::Busy));
        assert_eq!(sender.send(link, b"more", &events), Err(SendError::Busy));
        assert_eq!(values.recv().await.map(|v| v[0]), Some(0));
        let ready = seen.recv().await;
        assert_eq!(ready, Some(DriverEvent::SendReady { link, bearer: Bearer::Gatt }));
        sender.ready();
        assert_eq!(sender.send(link, b"more", &events), Ok(()));
        // Exactly one SendReady for the two refusals.
        assert!(seen.try_recv().is_err());
        drop(values);
        assert_eq!(sender.send(link, b"gone", &events), Err(SendError::NoSuchLink));
    }

    #[test]
    fn unknown_mtu_means_twenty_byte_values() {
        assert_eq!(max_value(0), 20);
        assert_eq!(max_value(23), 20);
        assert_eq!(max_value(185), 182);
        assert_eq!(max_value(517), 514);
    }
}
