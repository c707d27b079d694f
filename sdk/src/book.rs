//! Read-only views of a market's book from fetched account bytes: L3 (every
//! order, best first) and L2 (quantity per price level).
use anchor_lang::Discriminator;
use kestrel::engine::{BookSide, Side};
use kestrel::state::{BookSideAccount, BOOK_SIDE_BYTES};
use kestrel::units::{BaseLots, Ticks};

use crate::decode::{self, DecodeError};
use crate::Pubkey;

/// One resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub order_id: u128,
    pub price: Ticks,
    pub quantity: BaseLots,
    /// The margin account that placed it.
    pub owner: Pubkey,
    pub client_order_id: u64,
    /// Unix seconds placed; expiry 0 = good till cancelled.
    pub timestamp: u64,
    pub expiry: u64,
}

impl Order {
    pub fn is_expired(&self, now: u64) -> bool {
        self.expiry != 0 && now >= self.expiry
    }
}

/// One price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price: Ticks,
    pub quantity: BaseLots,
    pub orders: u32,
}

/// A decoded book side: its orders, best first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookSideView {
    pub side: Side,
    pub orders: Vec<Order>,
}

impl BookSideView {
    /// Decodes a book-side account's data (discriminator included).
    pub fn from_account_data(data: &[u8]) -> Result<Self, DecodeError> {
        let account_type = "BookSide";
        let mut words = decode::slab(
            account_type,
            BookSideAccount::DISCRIMINATOR,
            BOOK_SIDE_BYTES,
            data,
        )?;
        let book = BookSide::load(bytemuck::cast_slice_mut(&mut words))
            .map_err(|_| DecodeError::WrongDiscriminator { account_type })?;
        let orders = book
            .iter()
            .map(|(_, leaf)| Order {
                order_id: leaf.key(),
                price: leaf.price(),
                quantity: leaf.quantity,
                owner: Pubkey::new_from_array(leaf.owner),
                client_order_id: leaf.client_order_id,
                timestamp: leaf.timestamp,
                expiry: leaf.expiry,
            })
            .collect();
        Ok(Self {
            side: book.side(),
            orders,
        })
    }

    /// Orders that can still trade at `now` (all of them when `now` is None).
    pub fn l3(&self, now: Option<u64>) -> impl Iterator<Item = &Order> {
        self.orders
            .iter()
            .filter(move |o| now.is_none_or(|now| !o.is_expired(now)))
    }

    /// The best `depth` price levels of orders that can still trade at `now`.
    pub fn l2(&self, depth: usize, now: Option<u64>) -> Vec<Level> {
        let mut levels: Vec<Level> = Vec::new();
        for order in self.l3(now) {
            if let Some(level) = levels.last_mut().filter(|level| level.price == order.price) {
                level.quantity = BaseLots(level.quantity.0.saturating_add(order.quantity.0));
                level.orders += 1;
            } else if levels.len() == depth {
                break;
            } else {
                levels.push(Level {
                    price: order.price,
                    quantity: order.quantity,
                    orders: 1,
                });
            }
        }
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel::engine::{EventQueue, NewOrder, OrderType, Orderbook, SelfTradeBehavior};

    /// A bids account as the program writes it, with these (price, quantity, expiry) orders.
    fn bids_account(orders: &[(u64, u64, u64)]) -> Vec<u8> {
        let mut bids = vec![0u64; BOOK_SIDE_BYTES / 8];
        let mut asks = vec![0u64; BOOK_SIDE_BYTES / 8];
        let mut queue = vec![0u64; EventQueue::byte_len(4) / 8];
        let mut book = Orderbook {
            bids: BookSide::init(bytemuck::cast_slice_mut(&mut bids), Side::Bid).unwrap(),
            asks: BookSide::init(bytemuck::cast_slice_mut(&mut asks), Side::Ask).unwrap(),
        };
        let mut queue = EventQueue::init(bytemuck::cast_slice_mut(&mut queue)).unwrap();
        for (seq, &(price, quantity, expiry)) in orders.iter().enumerate() {
            let order = NewOrder {
                side: Side::Bid,
                order_type: OrderType::PostOnly,
                price: Ticks(price),
                quantity: BaseLots(quantity),
                owner: [seq as u8; 32],
                owner_slot: 0,
                client_order_id: seq as u64,
                flags: 0,
                expiry,
                self_trade: SelfTradeBehavior::DecrementTake,
                match_limit: 8,
                maker_fee_bps: 0,
                band: None,
            };
            book.place_order(&order, seq as u64, 10, &mut queue)
                .unwrap();
        }
        let mut data = BookSideAccount::DISCRIMINATOR.to_vec();
        data.extend_from_slice(bytemuck::cast_slice(&bids));
        data
    }

    #[test]
    fn l3_is_best_first_and_l2_aggregates_levels() {
        let data = bids_account(&[(100, 2, 0), (101, 1, 0), (100, 3, 0), (99, 5, 20)]);
        let view = BookSideView::from_account_data(&data).unwrap();
        assert_eq!(view.side, Side::Bid);
        let prices: Vec<(u64, u64)> = view
            .l3(None)
            .map(|o| (o.price.0, o.client_order_id))
            .collect();
        assert_eq!(prices, vec![(101, 1), (100, 0), (100, 2), (99, 3)]);
        assert_eq!(
            view.l2(2, None),
            vec![
                Level {
                    price: Ticks(101),
                    quantity: BaseLots(1),
                    orders: 1
                },
                Level {
                    price: Ticks(100),
                    quantity: BaseLots(5),
                    orders: 2
                },
            ]
        );
        // At time 20 the order at 99 has expired.
        assert_eq!(view.l2(10, Some(20)).len(), 2);
        assert_eq!(view.l2(10, None).len(), 3);
    }

    #[test]
    fn other_accounts_are_refused() {
        let mut data = bids_account(&[]);
        assert!(BookSideView::from_account_data(&data[..100]).is_err());
        data[0] ^= 1;
        assert!(matches!(
            BookSideView::from_account_data(&data),
            Err(DecodeError::WrongDiscriminator { .. })
        ));
    }
}
