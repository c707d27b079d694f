use anchor_lang::prelude::*;

use crate::engine::funding;
use crate::engine::insurance;
use crate::engine::perp::{self, Position};
use crate::engine::Side;
use crate::error::{KestrelError, OrOverflow};
use crate::state::{InstrumentKind, Market};
use crate::units::{BaseLots, NativeUnits, SignedBaseLots, SignedNativeUnits};

/// PDA seeds: `[MARGIN_ACCOUNT_SEED, exchange, owner, sub_account_index (u16 LE)]`.
pub const MARGIN_ACCOUNT_SEED: &[u8] = b"margin_account";
/// Markets one account can hold a position or orders in at once (an options
/// chain's strikes fit): bounds the health loop and the accounts every health
/// check needs.
pub const MAX_POSITIONS: usize = 32;
/// Orders one account can have resting across all markets.
pub const MAX_OPEN_ORDERS: usize = 64;
/// The layout version a margin account is created with (`version`): 2
/// since the slot mask (`position_slots`) took the first reserved bytes.
pub const MARGIN_ACCOUNT_VERSION: u8 = 2;

/// A position in one perpetual market. A slot is in use while the position,
/// its entry quote or its resting orders are not zero.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PerpPosition {
    pub market_index: u16,
    pub in_use: u8,
    /// The market's instrument kind (`InstrumentKind`), copied when the slot
    /// opens so a walk knows what the position is before loading its market.
    pub kind: u8,
    pub padding: [u8; 4],
    /// Signed base position in base lots (long > 0).
    pub base_lots: i64,
    /// Entry quote of the open position, native units: negative for a long.
    pub quote_native: i64,
    /// Base lots resting (or filled and not yet cranked) on each side.
    pub bids_base_lots: u64,
    pub asks_base_lots: u64,
    /// Lifetime totals, for the owner's records.
    pub realized_pnl_native: i64,
    pub fees_paid_native: i64,
    /// The market's cumulative funding index at the last settlement (I80F48
    /// bits as little-endian u64 halves; used from funding onwards).
    pub funding_index: [u64; 2],
    /// Lifetime funding and socialized loss paid (negative: received).
    pub funding_paid_native: i64,
    pub reserved: [u8; 16],
}

/// One resting order, so the owner can find and cancel it and the crank can
/// release it.
#[zero_copy]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OpenOrder {
    /// The engine's order id (price << 64 | sequence), as (lo, hi).
    pub order_id: [u64; 2],
    pub client_order_id: u64,
    pub market_index: u16,
    pub side: u8,
    pub in_use: u8,
    pub padding: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<PerpPosition>() == 96);
const _: () = assert!(core::mem::size_of::<OpenOrder>() == 32);

/// A user's cross-margined account. One owner may hold many, told apart by
/// `sub_account_index`. The delegate may deposit and trade but never
/// withdraw or close.
#[account(zero_copy)]
pub struct MarginAccount {
    pub exchange: Pubkey,
    pub owner: Pubkey,
    /// `Pubkey::default()` when there is none.
    pub delegate: Pubkey,
    /// Collateral in the mint's native units. Signed: realized losses can take
    /// it below zero before a bankruptcy is settled.
    pub collateral: i64,
    pub sub_account_index: u16,
    pub bump: u8,
    /// Layout version ([`MARGIN_ACCOUNT_VERSION`]).
    pub version: u8,
    pub padding0: [u8; 4],
    pub positions: [PerpPosition; MAX_POSITIONS],
    pub open_orders: [OpenOrder; MAX_OPEN_ORDERS],
    /// Insurance fund shares staked from this account, of `insurance_epoch`.
    pub insurance_shares: u64,
    pub insurance_epoch: u64,
    /// Shares asked back by `request_unstake`, and when (0: none pending).
    /// Part of `insurance_shares`, which they stay in until redeemed.
    pub unstake_shares: u64,
    pub unstake_requested_at: i64,
    /// The market of the last position slot released (for the owner's
    /// records; where a deficit is socialized is `deficit_market_index`).
    pub last_market_index: u16,
    /// Where a deficit left on this account is socialized: of the positions
    /// closed while its collateral was negative, the one that lost the most
    /// since it opened (see `release_position_if_empty`). Valid when
    /// `has_deficit_market` is 1.
    pub deficit_market_index: u16,
    pub has_deficit_market: u8,
    pub padding1: [u8; 3],
    /// What the requested `unstake_shares` were worth at the request: they
    /// redeem at most this (they bear losses, not gains).
    pub unstake_value: u64,
    /// The loss (realized PnL less fees and funding, negated) of the
    /// position recorded in `deficit_market_index`.
    pub deficit_market_loss_native: u64,
    /// Bit `i` set while `positions[i]` is in use: walks and lookups visit
    /// the positions in use only, not all 32 slots (a slot scan is most of
    /// what a lookup costs on chain). Kept by `position_or_open` and
    /// `release_slot`, the only writers of a slot's `in_use`.
    pub position_slots: u32,
    pub padding2: [u8; 4],
    /// How health margins the account ([`MarginMode`], `set_margin_mode`).
    pub margin_mode: u8,
    pub padding3: [u8; 7],
    /// Room for fields added by later versions without a migration; a
    /// second collateral balance (mint index, signed balance) fits here
    /// without moving a field.
    pub reserved: [u8; 240],
}

/// owner, delegate, exchange + collateral + index, bump, version, padding +
/// positions + open orders + insurance and deficit fields + position slots
/// and padding + margin mode and padding + reserved.
pub const MARGIN_ACCOUNT_SIZE: usize =
    3 * 32 + 8 + 8 + 96 * MAX_POSITIONS + 32 * MAX_OPEN_ORDERS + 7 * 8 + 8 + 8 + 240;
// Every slot has its bit.
const _: () = assert!(MAX_POSITIONS <= 32);
const _: () = assert!(MARGIN_ACCOUNT_SIZE == 5_544);
const _: () = assert!(core::mem::size_of::<MarginAccount>() == MARGIN_ACCOUNT_SIZE);
const _: () = assert!(core::mem::align_of::<MarginAccount>() <= 8);

impl PerpPosition {
    /// The position's size if its resting orders of one side all fill, the
    /// worse side (`engine::risk::worst_case`): what the market's caps
    /// bound.
    pub fn exposure_lots(&self) -> u128 {
        crate::engine::risk::worst_case(self.base_lots, self.bids_base_lots, self.asks_base_lots)
            .unsigned_abs()
    }

    pub fn position(&self) -> Position {
        Position {
            base_lots: SignedBaseLots(self.base_lots),
            quote: SignedNativeUnits(self.quote_native),
        }
    }

    /// The largest |position| in lots if all resting orders of one side fill
    /// (the quantity health charges margin on).
    pub fn worst_case_lots(&self) -> i128 {
        crate::engine::risk::worst_case(self.base_lots, self.bids_base_lots, self.asks_base_lots)
    }

    /// What the position lost since its slot opened: realized PnL less fees
    /// and funding paid, negated (0 for a gain; u64::MAX past that).
    pub fn lifetime_loss(&self) -> u64 {
        let net = i128::from(self.realized_pnl_native)
            - i128::from(self.fees_paid_native)
            - i128::from(self.funding_paid_native);
        u64::try_from(net.min(0).unsigned_abs()).unwrap_or(u64::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.base_lots == 0
            && self.quote_native == 0
            && self.bids_base_lots == 0
            && self.asks_base_lots == 0
    }

    /// Books a trade on `side` (a bid buys); returns the realized PnL.
    pub fn trade(&mut self, side: Side, lots: BaseLots, quote: NativeUnits) -> Result<i64> {
        let outcome = perp::apply_trade(self.position(), side, lots, quote).or_overflow()?;
        self.base_lots = outcome.position.base_lots.0;
        self.quote_native = outcome.position.quote.0;
        self.realized_pnl_native = self
            .realized_pnl_native
            .checked_add(outcome.realized.0)
            .or_overflow()?;
        Ok(outcome.realized.0)
    }

    fn resting_mut(&mut self, side: Side) -> &mut u64 {
        match side {
            Side::Bid => &mut self.bids_base_lots,
            Side::Ask => &mut self.asks_base_lots,
        }
    }

    pub fn reserve(&mut self, side: Side, lots: BaseLots) -> Result<()> {
        let resting = self.resting_mut(side);
        *resting = resting.checked_add(lots.0).or_overflow()?;
        Ok(())
    }

    /// Resting orders left the book (filled, cancelled or out).
    pub fn release(&mut self, side: Side, lots: BaseLots) -> Result<()> {
        let resting = self.resting_mut(side);
        *resting = resting
            .checked_sub(lots.0)
            .ok_or(KestrelError::AccountingMismatch)?;
        Ok(())
    }
}

impl OpenOrder {
    pub fn order_id(&self) -> u128 {
        crate::engine::node::key_from_parts(self.order_id)
    }

    /// The order's side; a byte that is no side is refused, never read as
    /// one (only the program writes it).
    pub fn side(&self) -> Result<Side> {
        Ok(Side::from_u8(self.side).ok_or(KestrelError::Unreachable)?)
    }
}

/// How health margins an account. Stored as a byte: append new variants
/// only.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum MarginMode {
    /// Each position at a fraction of its worst case, summed (options by
    /// their own rule): the default.
    #[default]
    Standard,
    /// Per underlying with a scenario grid, the whole portfolio on it
    /// revalued under the grid: the worst scenario loss times a factor
    /// plus contingencies (`engine::scenario_margin`). Positions on an
    /// underlying without a grid are margined as in standard mode.
    Portfolio,
}

impl MarginAccount {
    /// The account's margin mode (an unknown byte reads as standard: only
    /// `set_margin_mode` writes it, from the enum).
    pub fn margin_mode(&self) -> MarginMode {
        if self.margin_mode == MarginMode::Portfolio as u8 {
            MarginMode::Portfolio
        } else {
            MarginMode::Standard
        }
    }

    pub const SPACE: usize = 8 + MARGIN_ACCOUNT_SIZE;

    pub fn has_delegate(&self) -> bool {
        self.delegate != Pubkey::default()
    }

    pub fn is_owner_or_delegate(&self, key: &Pubkey) -> bool {
        self.owner == *key || (self.has_delegate() && self.delegate == *key)
    }

    /// Collateral that may leave the account before health is considered:
    /// the positive part of the balance (unrealized profit is not cash).
    pub fn free_collateral(&self) -> u64 {
        self.collateral.max(0) as u64
    }

    pub fn credit(&mut self, amount: u64) -> Result<()> {
        let amount = i64::try_from(amount).ok().or_overflow()?;
        self.add_collateral(amount)
    }

    /// Adds a signed amount (realized PnL, fees, rewards) to collateral.
    pub fn add_collateral(&mut self, amount: i64) -> Result<()> {
        self.collateral = self.collateral.checked_add(amount).or_overflow()?;
        Ok(())
    }

    /// Takes `amount` out of free collateral, or refuses and changes nothing.
    pub fn debit_free(&mut self, amount: u64) -> Result<()> {
        require!(
            amount <= self.free_collateral(),
            KestrelError::InsufficientFreeCollateral
        );
        // amount <= collateral <= i64::MAX, so neither step can overflow.
        self.collateral -= amount as i64;
        Ok(())
    }

    /// Shares of an older insurance epoch were wiped out by a bankruptcy
    /// that emptied the fund: they and any request for them lapse.
    pub fn refresh_insurance(&mut self, epoch: u64) {
        if self.insurance_epoch != epoch {
            self.insurance_shares = 0;
            self.clear_unstake_request();
            self.insurance_epoch = epoch;
        }
    }

    pub fn clear_unstake_request(&mut self) {
        self.unstake_shares = 0;
        self.unstake_requested_at = 0;
        self.unstake_value = 0;
    }

    /// Burns the requested shares' gains since the request: of the
    /// `unstake_shares` (worth at most `unstake_value`, whatever the fund
    /// earned since), keeps those worth that value and retires the rest from
    /// the account and `total_shares`, so what they would have earned stays
    /// with the fund's other stakers. Done before a request is replaced and
    /// before a bankruptcy redeems the account's shares, so that neither
    /// letting a request lapse nor going bankrupt gives the gains back.
    /// Returns the shares burnt.
    pub fn forfeit_unstake_gains(&mut self, total_shares: &mut u64, fund: u64) -> Result<u64> {
        if self.unstake_shares == 0 {
            return Ok(0);
        }
        let pending = self.unstake_shares.min(self.insurance_shares);
        let keep = insurance::Fund {
            shares: *total_shares,
            assets: fund,
        }
        .shares_worth_cap(pending, self.unstake_value)
        .ok_or(KestrelError::AccountingMismatch)?;
        let burnt = pending - keep;
        self.insurance_shares -= burnt;
        *total_shares = total_shares
            .checked_sub(burnt)
            .ok_or(KestrelError::AccountingMismatch)?;
        self.unstake_shares = keep;
        Ok(burnt)
    }

    /// The market a deficit on this account is socialized in: where the
    /// loss arose (`deficit_market_index`), or for an account whose deficit
    /// predates that record, the market of its last released position.
    pub fn bankruptcy_market_index(&self) -> u16 {
        if self.has_deficit_market != 0 {
            self.deficit_market_index
        } else {
            self.last_market_index
        }
    }

    pub fn clear_deficit_market(&mut self) {
        self.deficit_market_index = 0;
        self.has_deficit_market = 0;
        self.deficit_market_loss_native = 0;
    }

    /// Closing is allowed only when nothing of value or risk is left.
    pub fn is_empty(&self) -> bool {
        self.collateral == 0
            && self.insurance_shares == 0
            && self.position_slots == 0
            && self.active_orders().next().is_none()
    }

    /// The positions in use, with their slots, in slot order. The mask is
    /// shifted bit by bit (SBPF v0 has no count-trailing-zeros: LLVM's
    /// expansion costs more than a shift per slot), stopping after the
    /// highest slot in use.
    pub fn active_positions(&self) -> impl Iterator<Item = (usize, &PerpPosition)> {
        let mut slots = self.position_slots;
        let mut slot = 0usize;
        core::iter::from_fn(move || {
            while slots != 0 {
                let this = slot;
                let in_use = slots & 1 != 0;
                slots >>= 1;
                slot += 1;
                if in_use {
                    return self.positions.get(this).map(|position| (this, position));
                }
            }
            None
        })
    }

    /// The mask of the position slots whose `in_use` byte is set: what
    /// `position_slots` must equal (the audit and the tests check it).
    pub fn slots_in_use(&self) -> u32 {
        self.positions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.in_use != 0)
            .fold(0u32, |mask, (slot, _)| mask | 1 << slot)
    }

    /// The open orders in use, with their slots.
    pub fn active_orders(&self) -> impl Iterator<Item = (usize, &OpenOrder)> {
        self.open_orders
            .iter()
            .enumerate()
            .filter(|(_, o)| o.in_use != 0)
    }

    pub fn position(&self, market_index: u16) -> Option<&PerpPosition> {
        self.positions.get(self.slot_of(market_index)?)
    }

    pub fn position_mut(&mut self, market_index: u16) -> Option<&mut PerpPosition> {
        let slot = self.slot_of(market_index)?;
        self.positions.get_mut(slot)
    }

    /// The position in `market_index`, opening a slot (tagged with the
    /// market's instrument `kind`) if there is none.
    pub fn position_or_open(
        &mut self,
        market_index: u16,
        kind: InstrumentKind,
    ) -> Result<&mut PerpPosition> {
        let index = match self.slot_of(market_index) {
            Some(index) => index,
            None => {
                let free = (0..MAX_POSITIONS)
                    .find(|slot| self.position_slots & (1 << slot) == 0)
                    .ok_or(KestrelError::TooManyPositions)?;
                self.positions[free] = PerpPosition {
                    market_index,
                    in_use: 1,
                    kind: kind as u8,
                    ..Default::default()
                };
                self.position_slots |= 1 << free;
                free
            }
        };
        Ok(&mut self.positions[index])
    }

    /// Settles the position in `market` against the market's funding index:
    /// what it owes leaves collateral for the market's funding balance (what
    /// it is owed comes the other way). Returns the amount paid.
    pub fn settle_funding(&mut self, market: &mut Market) -> Result<i64> {
        match self.slot_of(market.market_index) {
            Some(slot) => self.settle_funding_in(slot, market),
            None => Ok(0),
        }
    }

    /// The slot holding `market_index`: a tight walk of the slot mask
    /// (every instruction looks its position up several times).
    fn slot_of(&self, market_index: u16) -> Option<usize> {
        let mut slots = self.position_slots;
        let mut slot = 0usize;
        while slots != 0 {
            if slots & 1 != 0 && self.positions.get(slot)?.market_index == market_index {
                return Some(slot);
            }
            slots >>= 1;
            slot += 1;
        }
        None
    }

    /// [`Self::settle_funding`] for the position in `slot`.
    fn settle_funding_in(&mut self, slot: usize, market: &mut Market) -> Result<i64> {
        let position = &mut self.positions[slot];
        let index = market.funding_index_parts_for(position.base_lots);
        if position.funding_index == index {
            return Ok(0);
        }
        let owed = funding::funding_owed(
            funding::from_parts(index),
            funding::from_parts(position.funding_index),
            position.base_lots,
        )
        .or_overflow()?;
        position.funding_index = index;
        if owed == 0 {
            return Ok(0);
        }
        position.funding_paid_native = position
            .funding_paid_native
            .checked_add(owed)
            .or_overflow()?;
        self.add_collateral(owed.checked_neg().or_overflow()?)?;
        market.book_funding(owed)?;
        Ok(owed)
    }

    /// Books a fill on the position in `market` (which must exist): settles
    /// its funding first, moves realized PnL less `fee` (negative: a rebate)
    /// to collateral, and keeps the market's open interest.
    pub fn settle_fill(
        &mut self,
        market: &mut Market,
        side: Side,
        lots: BaseLots,
        quote: NativeUnits,
        fee: i64,
    ) -> Result<()> {
        let slot = self
            .slot_of(market.market_index)
            .ok_or(KestrelError::AccountingMismatch)?;
        self.settle_funding_in(slot, market)?;
        let position = &mut self.positions[slot];
        let before = position.base_lots;
        let realized = position.trade(side, lots, quote)?;
        // Settled above at the old sign's index; from now on the new sign's.
        position.funding_index = market.funding_index_parts_for(position.base_lots);
        position.fees_paid_native = position.fees_paid_native.checked_add(fee).or_overflow()?;
        let after = position.base_lots;
        market.move_open_interest(before, after)?;
        self.add_collateral(realized.checked_sub(fee).or_overflow()?)
    }

    /// Frees the slot of `market_index` once nothing is left in it.
    ///
    /// It also records where a deficit would be socialized (audit finding
    /// L-4): when the account's collateral is negative after the slot is
    /// freed, the slot's market is recorded if its position lost more since
    /// it opened (realized PnL less fees and funding) than the position
    /// recorded so far; a slot freed with collateral not negative clears the
    /// record (the account paid its losses so far itself). Since only freed
    /// slots are recorded and a bankruptcy needs every slot free, the market
    /// is always one the account lost in while in deficit, the one it lost
    /// most in: a last-minute tiny trade elsewhere cannot take the deficit
    /// there, and splitting the loss into many fills does not change it.
    pub fn release_position_if_empty(&mut self, market_index: u16) {
        // A market has at most one slot (`position_or_open`).
        let Some(index) = self.slot_of(market_index) else {
            return;
        };
        if self.positions[index].is_empty() {
            self.release_slot(index, market_index);
        }
    }

    /// Kept out of line: the crank and cancels call the check above for
    /// every fill and order, and release rarely.
    #[inline(never)]
    fn release_slot(&mut self, index: usize, market_index: u16) {
        let loss = self.positions[index].lifetime_loss();
        self.positions[index] = PerpPosition::default();
        self.position_slots &= !(1 << index);
        self.last_market_index = market_index;
        self.record_deficit_market(market_index, loss);
    }

    fn record_deficit_market(&mut self, market_index: u16, loss: u64) {
        if self.collateral >= 0 {
            self.clear_deficit_market();
        } else if self.has_deficit_market == 0 || loss > self.deficit_market_loss_native {
            self.deficit_market_index = market_index;
            self.has_deficit_market = 1;
            self.deficit_market_loss_native = loss;
        }
    }

    /// A free open-order slot, if any.
    pub fn free_order_slot(&self) -> Option<u8> {
        self.open_orders
            .iter()
            .position(|o| o.in_use == 0)
            .map(|i| i as u8)
    }

    pub fn record_order(
        &mut self,
        slot: u8,
        market_index: u16,
        side: Side,
        order_id: u128,
        client_order_id: u64,
    ) {
        self.open_orders[usize::from(slot)] = OpenOrder {
            order_id: crate::engine::node::key_to_parts(order_id),
            client_order_id,
            market_index,
            side: side as u8,
            in_use: 1,
            padding: [0; 4],
        };
    }

    /// Frees `slot` if it still holds `order_id` (a slot may have been
    /// released by a cancel and reused before the crank reports the order gone).
    pub fn forget_order(&mut self, slot: u8, market_index: u16, order_id: u128) {
        if let Some(order) = self.open_orders.get_mut(usize::from(slot)) {
            if order.in_use != 0
                && order.market_index == market_index
                && order.order_id() == order_id
            {
                *order = OpenOrder::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Whatever opens and releases slots, in any order, the mask is
        /// exactly the slots in use, and lookups find every open market.
        #[test]
        fn the_slot_mask_is_the_slots_in_use(
            steps in proptest::collection::vec((0u16..40, any::<bool>()), 1..200),
        ) {
            use super::*;
            let mut account: MarginAccount = bytemuck::Zeroable::zeroed();
            for (market_index, open) in steps {
                if open {
                    let _ = account.position_or_open(market_index, InstrumentKind::Perp);
                } else {
                    account.release_position_if_empty(market_index);
                }
                prop_assert_eq!(account.slots_in_use(), account.position_slots);
                for (slot, position) in account.positions.iter().enumerate() {
                    if position.in_use != 0 {
                        prop_assert_eq!(account.slot_of(position.market_index), Some(slot));
                    }
                }
            }
        }
    }

    use super::*;
    use fixed::types::I80F48;

    fn account(collateral: i64) -> MarginAccount {
        let mut a: MarginAccount = bytemuck::Zeroable::zeroed();
        a.collateral = collateral;
        a
    }

    #[test]
    fn credit_then_debit_round_trips() {
        let mut a = account(0);
        a.credit(1_000_000).unwrap();
        a.debit_free(400_000).unwrap();
        assert_eq!(a.collateral, 600_000);
        a.debit_free(600_000).unwrap();
        assert!(a.is_empty());
    }

    #[test]
    fn debit_beyond_free_collateral_changes_nothing() {
        let mut a = account(10);
        assert!(a.debit_free(11).is_err());
        assert_eq!(a.collateral, 10);
        let mut negative = account(-5);
        assert_eq!(negative.free_collateral(), 0);
        assert!(negative.debit_free(1).is_err());
        assert_eq!(negative.collateral, -5);
    }

    #[test]
    fn credit_overflow_is_an_error_not_a_wrap() {
        let mut a = account(i64::MAX - 1);
        assert!(a.credit(2).is_err());
        assert_eq!(a.collateral, i64::MAX - 1);
        assert!(account(0).clone().credit(u64::MAX).is_err());
    }

    #[test]
    fn delegate_is_recognised_only_when_set() {
        let owner = Pubkey::new_unique();
        let mut a = account(0);
        a.owner = owner;
        assert!(a.is_owner_or_delegate(&owner));
        assert!(!a.is_owner_or_delegate(&Pubkey::default()));
        let delegate = Pubkey::new_unique();
        a.delegate = delegate;
        assert!(a.is_owner_or_delegate(&delegate));
    }

    #[test]
    fn position_slots_open_on_demand_are_bounded_and_free_when_empty() {
        let mut a = account(0);
        for market in 0..MAX_POSITIONS as u16 {
            a.position_or_open(market, InstrumentKind::Perp)
                .unwrap()
                .reserve(Side::Bid, BaseLots(1))
                .unwrap();
        }
        assert!(
            a.position_or_open(99, InstrumentKind::Perp).is_err(),
            "every slot is taken"
        );
        // An existing position is found, not opened twice.
        a.position_or_open(3, InstrumentKind::Perp).unwrap();
        assert_eq!(
            a.positions.iter().filter(|p| p.market_index == 3).count(),
            1
        );
        a.release_position_if_empty(3);
        assert!(a.position(3).is_some(), "a reservation keeps the slot");
        a.position_mut(3)
            .unwrap()
            .release(Side::Bid, BaseLots(1))
            .unwrap();
        a.release_position_if_empty(3);
        assert!(a.position(3).is_none());
        assert!(
            a.position_or_open(99, InstrumentKind::Perp).is_ok(),
            "the freed slot is reused"
        );
        assert!(!a.is_empty(), "positions keep the account open");
    }

    #[test]
    fn releasing_more_than_reserved_is_an_error() {
        let mut a = account(0);
        let position = a.position_or_open(0, InstrumentKind::Perp).unwrap();
        position.reserve(Side::Ask, BaseLots(2)).unwrap();
        assert!(position.release(Side::Ask, BaseLots(3)).is_err());
        assert!(position.release(Side::Bid, BaseLots(1)).is_err());
        assert_eq!(position.asks_base_lots, 2);
    }

    #[test]
    fn a_reused_order_slot_is_not_freed_by_a_stale_event() {
        let mut a = account(0);
        let slot = a.free_order_slot().unwrap();
        a.record_order(slot, 0, Side::Bid, 111, 7);
        // Cancelled, then the slot is reused by a new order.
        a.forget_order(slot, 0, 111);
        a.record_order(slot, 0, Side::Ask, 222, 8);
        // A late event about order 111 leaves order 222 alone.
        a.forget_order(slot, 0, 111);
        assert_eq!(a.open_orders[usize::from(slot)].order_id(), 222);
        a.forget_order(slot, 0, 222);
        assert_eq!(a.open_orders[usize::from(slot)].in_use, 0);
    }

    #[test]
    fn settling_a_fill_moves_realized_pnl_less_fees_to_collateral() {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        let mut a = account(1_000);
        a.position_or_open(0, InstrumentKind::Perp).unwrap();
        a.settle_fill(&mut market, Side::Bid, BaseLots(10), NativeUnits(1_500), 2)
            .unwrap();
        assert_eq!(a.collateral, 998);
        assert_eq!((market.long_lots, market.short_lots), (10, 0));
        a.settle_fill(&mut market, Side::Ask, BaseLots(10), NativeUnits(1_600), -1)
            .unwrap();
        assert_eq!(a.collateral, 998 + 100 + 1);
        assert_eq!((market.long_lots, market.short_lots), (0, 0));
        let position = a.position(0).unwrap();
        assert_eq!(
            (position.realized_pnl_native, position.fees_paid_native),
            (100, 1)
        );
        market.market_index = 5;
        assert!(a
            .settle_fill(&mut market, Side::Bid, BaseLots(1), NativeUnits(1), 0)
            .is_err());
    }

    #[test]
    fn funding_settles_before_a_fill_and_against_the_side_held() {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        let mut long = account(1_000);
        let mut short = account(1_000);
        long.position_or_open(0, InstrumentKind::Perp).unwrap();
        short.position_or_open(0, InstrumentKind::Perp).unwrap();
        long.settle_fill(&mut market, Side::Bid, BaseLots(4), NativeUnits(400), 0)
            .unwrap();
        short
            .settle_fill(&mut market, Side::Ask, BaseLots(4), NativeUnits(400), 0)
            .unwrap();
        // Longs pay 2.5 per lot; a socialized 1 per lot on top: longs +1, shorts -1.
        market.long_funding_index = funding::to_parts(I80F48::from_num(3.5));
        market.short_funding_index = funding::to_parts(I80F48::from_num(1.5));
        assert_eq!(long.settle_funding(&mut market).unwrap(), 14);
        assert_eq!(short.settle_funding(&mut market).unwrap(), -6);
        assert_eq!(market.funding_balance_native, 8);
        assert_eq!((long.collateral, short.collateral), (986, 1_006));
        assert_eq!(long.settle_funding(&mut market).unwrap(), 0, "settled once");
        // The short flips long: it is now charged on the long index.
        short
            .settle_fill(&mut market, Side::Bid, BaseLots(6), NativeUnits(600), 0)
            .unwrap();
        market.long_funding_index = funding::to_parts(I80F48::from_num(4.5));
        assert_eq!(short.settle_funding(&mut market).unwrap(), 2);
        assert_eq!((market.long_lots, market.short_lots), (6, 0));
    }

    /// Opens and closes `lots` in `market`: bought for `paid`, sold for `got`.
    fn round_trip(a: &mut MarginAccount, market: &mut Market, lots: u64, paid: u64, got: u64) {
        a.position_or_open(market.market_index, InstrumentKind::Perp)
            .unwrap();
        a.settle_fill(market, Side::Bid, BaseLots(lots), NativeUnits(paid), 0)
            .unwrap();
        a.settle_fill(market, Side::Ask, BaseLots(lots), NativeUnits(got), 0)
            .unwrap();
        a.release_position_if_empty(market.market_index);
        assert!(a.position(market.market_index).is_none());
    }

    #[test]
    fn the_deficit_market_is_where_the_account_lost_most_while_in_deficit() {
        let mut big: Market = bytemuck::Zeroable::zeroed();
        let mut tiny: Market = bytemuck::Zeroable::zeroed();
        tiny.market_index = 1;
        // The big loss first, then a tiny losing trade elsewhere: the tiny
        // trade is the last released, the deficit stays where it arose.
        let mut a = account(100);
        round_trip(&mut a, &mut big, 10, 1_000, 0);
        assert_eq!(a.collateral, -900);
        assert_eq!(
            (a.bankruptcy_market_index(), a.deficit_market_loss_native),
            (0, 1_000)
        );
        round_trip(&mut a, &mut tiny, 1, 10, 9);
        assert_eq!(a.last_market_index, 1);
        assert_eq!(
            a.bankruptcy_market_index(),
            0,
            "not steered by the tiny trade"
        );
        // A position closed while the account could still pay clears the
        // record: a later loss elsewhere is what made the deficit.
        let mut b = account(1_005);
        round_trip(&mut b, &mut big, 10, 1_000, 0);
        assert_eq!(b.has_deficit_market, 0);
        round_trip(&mut b, &mut tiny, 1, 10, 0);
        assert_eq!((b.collateral, b.bankruptcy_market_index()), (-5, 1));
        // The bigger loser wins whichever closes last.
        let mut c = account(10);
        round_trip(&mut c, &mut tiny, 1, 20, 0);
        round_trip(&mut c, &mut big, 10, 1_000, 900);
        assert_eq!(c.bankruptcy_market_index(), 0);
        // Without a record (a deficit from an older version) the last market.
        let mut legacy = account(-5);
        legacy.last_market_index = 7;
        assert_eq!(legacy.bankruptcy_market_index(), 7);
    }

    #[test]
    fn a_forfeited_request_keeps_shares_worth_its_value() {
        let mut a = account(0);
        a.insurance_shares = 100_000;
        a.unstake_shares = 100_000;
        a.unstake_value = 100;
        // The fund grew from 200 to 250 since the request.
        let mut total = 200_000;
        let burnt = a.forfeit_unstake_gains(&mut total, 250).unwrap();
        assert!(burnt > 0);
        assert_eq!(
            (a.insurance_shares, total),
            (100_000 - burnt, 200_000 - burnt)
        );
        assert_eq!(a.unstake_shares, a.insurance_shares);
        let fund = insurance::Fund {
            shares: total,
            assets: 250,
        };
        assert!(fund.value_of(a.unstake_shares).unwrap() <= 100);
        // After a loss nothing is burnt.
        let mut total = 200_000;
        let mut b = account(0);
        b.insurance_shares = 100_000;
        b.unstake_shares = 50_000;
        b.unstake_value = 50;
        assert_eq!(b.forfeit_unstake_gains(&mut total, 150).unwrap(), 0);
    }
}
