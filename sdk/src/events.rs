//! A market's pending events from fetched event-queue bytes, and which margin
//! accounts the crank must pass to apply them.
use anchor_lang::Discriminator;
use kestrel::engine::event_queue::{AnyEvent, Event};
use kestrel::engine::EventQueue;
use kestrel::state::{EventQueueAccount, EVENT_QUEUE_BYTES};

use crate::decode::{self, DecodeError};
use crate::Pubkey;

/// The queue's events, oldest first, from its account data (discriminator included).
pub fn pending_events(data: &[u8]) -> Result<Vec<AnyEvent>, DecodeError> {
    let account_type = "EventQueue";
    let mut slab = decode::slab(
        account_type,
        EventQueueAccount::DISCRIMINATOR,
        EVENT_QUEUE_BYTES,
        data,
    )?;
    let queue = EventQueue::load(bytemuck::cast_slice_mut(&mut slab))
        .map_err(|_| DecodeError::WrongDiscriminator { account_type })?;
    Ok(queue.iter().copied().collect())
}

/// The margin account an event settles: the maker of a fill, the owner of an out.
pub fn settled_account(event: &AnyEvent) -> Option<Pubkey> {
    match event.decode()? {
        Event::Fill(fill) => Some(Pubkey::new_from_array(fill.maker)),
        Event::Out(out) => Some(Pubkey::new_from_array(out.owner)),
    }
}

/// The distinct accounts `consume_events` needs for the first `limit` events.
pub fn accounts_to_crank(events: &[AnyEvent], limit: usize) -> Vec<Pubkey> {
    let mut accounts: Vec<Pubkey> = Vec::new();
    for key in events.iter().take(limit).filter_map(settled_account) {
        if !accounts.contains(&key) {
            accounts.push(key);
        }
    }
    accounts
}
