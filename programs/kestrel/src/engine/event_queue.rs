//! The event queue: a ring buffer of fills and outs, viewed in place over a
//! byte slice. Matching reserves room for every event an order produces
//! before it changes anything, so an event is never dropped or overwritten.
use bytemuck::{Pod, Zeroable};

use super::error::EngineError;
use super::node::Owner;
use crate::units::{BaseLots, Ticks};

pub const EVENT_SIZE: usize = 144;
pub const EVENT_QUEUE_HEADER_SIZE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EventQueueHeader {
    /// Slot of the oldest event.
    pub head: u32,
    pub count: u32,
    pub capacity: u32,
    pub padding: u32,
    /// Sequence number the next event gets; never reused.
    pub seq_num: u64,
    pub reserved: [u8; 40],
}

const _: () = assert!(core::mem::size_of::<EventQueueHeader>() == EVENT_QUEUE_HEADER_SIZE);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EventType {
    Fill = 1,
    Out = 2,
}

/// Why an order left the book other than by its owner's cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OutReason {
    /// Met by a taker after its expiry.
    Expired = 1,
    /// Removed or reduced by self-trade prevention.
    SelfTrade = 2,
    /// Pushed out of a full side by a better order.
    Evicted = 3,
    /// Reached by a taker while priced outside the oracle band: it could
    /// not trade, and left resting it would block the orders behind it.
    OutsideBand = 4,
}

/// A maker's order traded with a taker. The taker settled in its own
/// instruction; the maker settles when the event is consumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FillEvent {
    pub event_type: u8,
    pub taker_side: u8,
    /// 1 when the maker order is now entirely filled and off the book.
    pub maker_out: u8,
    pub maker_slot: u8,
    /// The market's maker fee when the fill happened (negative: a rebate),
    /// so a parameter change before the crank cannot alter what was agreed.
    pub maker_fee_bps: i32,
    pub timestamp: u64,
    pub seq_num: u64,
    pub maker: Owner,
    pub maker_client_order_id: u64,
    /// When the maker order was placed.
    pub maker_timestamp: u64,
    pub taker: Owner,
    pub taker_client_order_id: u64,
    pub price: Ticks,
    pub quantity: BaseLots,
    pub maker_order_id: [u64; 2],
}

/// An order left the book, or shrank, without trading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct OutEvent {
    pub event_type: u8,
    pub side: u8,
    pub owner_slot: u8,
    pub reason: u8,
    /// 1 when the order is off the book; 0 when it only shrank.
    pub order_gone: u8,
    pub padding: [u8; 3],
    pub timestamp: u64,
    pub seq_num: u64,
    pub owner: Owner,
    pub client_order_id: u64,
    /// Base lots that left the book.
    pub quantity: BaseLots,
    pub order_id: [u64; 2],
    pub reserved: [u8; 56],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct AnyEvent {
    pub event_type: u8,
    pub padding: [u8; 7],
    pub data: [u64; 17],
}

const _: () = assert!(core::mem::size_of::<FillEvent>() == EVENT_SIZE);
const _: () = assert!(core::mem::size_of::<OutEvent>() == EVENT_SIZE);
const _: () = assert!(core::mem::size_of::<AnyEvent>() == EVENT_SIZE);

/// A decoded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'e> {
    Fill(&'e FillEvent),
    Out(&'e OutEvent),
}

impl AnyEvent {
    pub fn decode(&self) -> Option<Event<'_>> {
        match self.event_type {
            t if t == EventType::Fill as u8 => Some(Event::Fill(bytemuck::cast_ref(self))),
            t if t == EventType::Out as u8 => Some(Event::Out(bytemuck::cast_ref(self))),
            _ => None,
        }
    }
}

/// Events waiting in a queue, read from its slab without borrowing it
/// mutably (for read-only accounts).
pub fn pending_count(data: &[u8]) -> Result<u32, EngineError> {
    let header = data
        .get(..EVENT_QUEUE_HEADER_SIZE)
        .and_then(|bytes| bytemuck::try_from_bytes::<EventQueueHeader>(bytes).ok())
        .ok_or(EngineError::BadLayout)?;
    Ok(header.count)
}

pub struct EventQueue<'a> {
    header: &'a mut EventQueueHeader,
    events: &'a mut [AnyEvent],
}

impl<'a> EventQueue<'a> {
    pub const fn byte_len(capacity: usize) -> usize {
        EVENT_QUEUE_HEADER_SIZE + capacity * EVENT_SIZE
    }

    fn split(
        data: &'a mut [u8],
    ) -> Result<(&'a mut EventQueueHeader, &'a mut [AnyEvent]), EngineError> {
        if data.len() <= EVENT_QUEUE_HEADER_SIZE
            || !(data.len() - EVENT_QUEUE_HEADER_SIZE).is_multiple_of(EVENT_SIZE)
        {
            return Err(EngineError::BadLayout);
        }
        let (header, events) = data.split_at_mut(EVENT_QUEUE_HEADER_SIZE);
        let header = bytemuck::try_from_bytes_mut(header).map_err(|_| EngineError::BadLayout)?;
        let events = bytemuck::try_cast_slice_mut(events).map_err(|_| EngineError::BadLayout)?;
        Ok((header, events))
    }

    /// Formats a zeroed slab as an empty queue.
    pub fn init(data: &'a mut [u8]) -> Result<Self, EngineError> {
        let (header, events) = Self::split(data)?;
        if header.capacity != 0 || events.len() > u32::MAX as usize {
            return Err(EngineError::BadLayout);
        }
        header.capacity = events.len() as u32;
        Ok(Self { header, events })
    }

    pub fn load(data: &'a mut [u8]) -> Result<Self, EngineError> {
        let (header, events) = Self::split(data)?;
        if header.capacity as usize != events.len()
            || header.count > header.capacity
            || header.head >= header.capacity
        {
            return Err(EngineError::BadLayout);
        }
        Ok(Self { header, events })
    }

    pub fn len(&self) -> usize {
        self.header.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.header.count == 0
    }

    pub fn capacity(&self) -> usize {
        self.events.len()
    }

    pub fn free_space(&self) -> usize {
        self.capacity() - self.len()
    }

    /// The sequence number the next pushed event will get.
    pub fn next_seq_num(&self) -> u64 {
        self.header.seq_num
    }

    /// Appends an event, stamping its sequence number; refuses when full.
    pub fn push_back(&mut self, mut event: AnyEvent) -> Result<(), EngineError> {
        if self.free_space() == 0 {
            return Err(EngineError::EventQueueFull);
        }
        // Both event layouts keep seq_num at bytes 16..24 (data[1]).
        event.data[1] = self.header.seq_num;
        let slot = (self.header.head as usize + self.len()) % self.capacity();
        self.events[slot] = event;
        self.header.count += 1;
        self.header.seq_num += 1;
        Ok(())
    }

    pub fn front(&self) -> Option<&AnyEvent> {
        (!self.is_empty()).then(|| &self.events[self.header.head as usize])
    }

    pub fn pop_front(&mut self) -> Option<AnyEvent> {
        let event = *self.front()?;
        self.header.head = ((self.header.head as usize + 1) % self.capacity()) as u32;
        self.header.count -= 1;
        Some(event)
    }

    /// Events oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &AnyEvent> + '_ {
        self.newest(self.len())
    }

    /// The newest `count` events (all when fewer), oldest of them first.
    pub fn newest(&self, count: usize) -> impl Iterator<Item = &AnyEvent> + '_ {
        let head = self.header.head as usize;
        let len = self.len();
        (len.saturating_sub(count)..len).map(move |i| &self.events[(head + i) % self.capacity()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::book_side::tests::slab;

    fn out(quantity: u64) -> AnyEvent {
        bytemuck::cast(OutEvent {
            event_type: EventType::Out as u8,
            side: 0,
            owner_slot: 0,
            reason: OutReason::Expired as u8,
            order_gone: 1,
            padding: [0; 3],
            timestamp: 0,
            seq_num: 0,
            owner: [0; 32],
            client_order_id: 0,
            quantity: BaseLots(quantity),
            order_id: [0; 2],
            reserved: [0; 56],
        })
    }

    #[test]
    fn fifo_wraps_around_numbers_events_and_refuses_when_full() {
        let mut data = slab(EventQueue::byte_len(3));
        let mut queue = EventQueue::init(bytemuck::cast_slice_mut(&mut data)).unwrap();
        for q in 1..=3 {
            queue.push_back(out(q)).unwrap();
        }
        assert_eq!(queue.push_back(out(4)), Err(EngineError::EventQueueFull));
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop_front().unwrap(), {
            let mut e = out(1);
            e.data[1] = 0;
            e
        });
        queue.push_back(out(4)).unwrap();
        let seen: Vec<(u64, u64)> = queue
            .iter()
            .map(|e| match e.decode() {
                Some(Event::Out(o)) => (o.seq_num, o.quantity.0),
                _ => panic!("an out event"),
            })
            .collect();
        assert_eq!(seen, vec![(1, 2), (2, 3), (3, 4)]);
        let newest: Vec<u64> = queue.newest(2).map(|e| e.data[1]).collect();
        assert_eq!(newest, vec![2, 3]);
        assert_eq!(queue.newest(9).count(), 3);
        assert_eq!(queue.next_seq_num(), 4);
        assert_eq!(pending_count(bytemuck::cast_slice(&data)), Ok(3));
        assert_eq!(pending_count(&[0u8; 8]), Err(EngineError::BadLayout));
    }

    #[test]
    fn bad_slabs_are_refused() {
        let mut data = slab(EventQueue::byte_len(2));
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data);
        assert!(EventQueue::init(&mut bytes[..EVENT_QUEUE_HEADER_SIZE + 10]).is_err());
        EventQueue::init(&mut bytes[..]).unwrap();
        assert!(EventQueue::init(&mut bytes[..]).is_err());
        EventQueue::load(bytes).unwrap();
    }
}
