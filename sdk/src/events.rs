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

/// The longest prefix of `events` one crank can apply: at most `max_events`
/// events naming at most `max_accounts` distinct margin accounts (a
/// transaction's 1,232 bytes bound the accounts it can name). Returns how
/// many events and the accounts they name.
pub fn crank_batch(
    events: &[AnyEvent],
    max_events: usize,
    max_accounts: usize,
) -> (usize, Vec<Pubkey>) {
    let mut accounts: Vec<Pubkey> = Vec::new();
    let mut taken = 0;
    for event in events.iter().take(max_events) {
        let Some(key) = settled_account(event) else {
            break;
        };
        if !accounts.contains(&key) {
            if accounts.len() == max_accounts {
                break;
            }
            accounts.push(key);
        }
        taken += 1;
    }
    (taken, accounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel::engine::event_queue::{EventType, OutEvent};

    fn out_for(owner: Pubkey) -> AnyEvent {
        let mut out: OutEvent = bytemuck::Zeroable::zeroed();
        out.event_type = EventType::Out as u8;
        out.owner = owner.to_bytes();
        bytemuck::cast(out)
    }

    #[test]
    fn a_batch_stops_before_an_account_over_the_limit() {
        let [a, b, c] = [0; 3].map(|_| Pubkey::new_unique());
        let events: Vec<AnyEvent> = [a, b, a, c, a].into_iter().map(out_for).collect();
        assert_eq!(crank_batch(&events, 10, 3), (5, vec![a, b, c]));
        // c would be a third account: the batch ends before it.
        assert_eq!(crank_batch(&events, 10, 2), (3, vec![a, b]));
        assert_eq!(crank_batch(&events, 2, 8), (2, vec![a, b]));
        assert_eq!(crank_batch(&[], 10, 8), (0, vec![]));
        assert_eq!(accounts_to_crank(&events, 4), vec![a, b, c]);
    }
}
