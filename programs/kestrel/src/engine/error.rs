/// Why the engine refused an operation. Every refusal leaves the book and the
/// event queue exactly as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineError {
    /// Quantity is zero.
    InvalidQuantity,
    /// Price is zero, or a post-only-slide price fell outside 1..=u64::MAX.
    InvalidPrice,
    /// A resting order's expiry is not in the future.
    OrderAlreadyExpired,
    /// A post-only order would have taken liquidity.
    PostOnlyWouldCross,
    /// A fill-or-kill order could not be filled in full.
    FillOrKillNotFilled,
    /// The order met one of its owner's orders under `AbortTransaction`.
    SelfTradeAborted,
    /// The side is full and the order is not better than its worst order.
    BookFull,
    /// The event queue cannot take every event the order would produce.
    EventQueueFull,
    /// An order with this id is already on the book.
    DuplicateOrderId,
    OrderNotFound,
    /// The order exists but belongs to someone else.
    NotOrderOwner,
    /// A quote amount does not fit in 64 bits.
    Overflow,
    /// The byte slab is not a valid book side or event queue.
    BadLayout,
}

impl core::fmt::Display for EngineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}
