//! Solvency audit: the collateral vault must hold exactly what the ledger says
//! it owes, every market's positions must net to zero, and every account's
//! order reservations must match the book and the queue (whose sequence
//! numbers must run without gaps); and (`insurance`) the insurance shares
//! must add up. Pure over fetched account bytes, so it runs against any chain.
//!
//! vault = Σ collateral + Σ entry quote of open positions
//!       + Σ quote owed to makers by fills not yet cranked + Σ market fees accrued
//!       + Σ market funding balances (funding and socialized loss paid in by
//!         positions, less what was paid out or fronted)
//!
//! and each market's open interest counters equal Σ long and Σ short lots of
//! the settled positions.
//!
//! (A fill moves quote between two accounts' collateral and entry quote; the
//! taker's leg is booked at once, the maker's when the crank applies it.)
use std::collections::BTreeMap;

use anchor_lang::solana_program::program_pack::Pack;
use anchor_spl::token::spl_token;
use kestrel::engine::event_queue::Event;
use kestrel::engine::perp;
use kestrel::engine::Side;
use kestrel_sdk::book::BookSideView;
use kestrel_sdk::decode::{self, DecodeError};
use kestrel_sdk::events::pending_events;
use kestrel_sdk::Pubkey;

/// One market's accounts, as fetched.
#[derive(Clone, Copy, Debug)]
pub struct MarketData<'a> {
    pub market: &'a [u8],
    pub bids: &'a [u8],
    pub asks: &'a [u8],
    pub event_queue: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conservation {
    pub vault_balance: u64,
    pub total_collateral: i128,
    /// Σ entry quote of open positions (negative for longs).
    pub entry_quote: i128,
    /// Σ quote the queue's fills owe makers (negative where makers pay).
    pub pending_maker_quote: i128,
    /// Σ fees accrued by markets and not yet swept.
    pub fees_owed: i128,
    /// Σ markets' funding balances.
    pub funding_balance: i128,
    pub margin_accounts: usize,
    /// Markets whose base positions (pending fills included) do not sum to 0.
    pub base_imbalances: Vec<(u16, i128)>,
    /// Accounts whose reservations or order slots disagree with the book.
    pub order_mismatches: Vec<String>,
}

impl Conservation {
    pub fn holds(&self) -> bool {
        self.imbalance() == 0 && self.base_imbalances.is_empty() && self.order_mismatches.is_empty()
    }

    /// Vault minus what it owes: positive is a surplus (tokens sent to the
    /// vault directly), negative a shortfall.
    pub fn imbalance(&self) -> i128 {
        i128::from(self.vault_balance)
            - self.total_collateral
            - self.entry_quote
            - self.pending_maker_quote
            - self.fees_owed
            - self.funding_balance
    }
}

impl std::fmt::Display for Conservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "vault {} = collateral {} + entry quote {} + pending maker quote {} + fees owed {} + funding balance {} over {} margin accounts: {}",
            self.vault_balance,
            self.total_collateral,
            self.entry_quote,
            self.pending_maker_quote,
            self.fees_owed,
            self.funding_balance,
            self.margin_accounts,
            if self.imbalance() == 0 {
                "holds".to_string()
            } else {
                format!("off by {}", self.imbalance())
            }
        )?;
        for (market, imbalance) in &self.base_imbalances {
            write!(f, "; market {market}: base lots sum to {imbalance}")?;
        }
        for mismatch in &self.order_mismatches {
            write!(f, "; {mismatch}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditError {
    VaultNotATokenAccount,
    MarginAccount(DecodeError),
    Market(DecodeError),
    Exchange(DecodeError),
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VaultNotATokenAccount => {
                write!(f, "the collateral vault is not an SPL token account")
            }
            Self::MarginAccount(e) => write!(f, "margin account: {e}"),
            Self::Market(e) => write!(f, "market: {e}"),
            Self::Exchange(e) => write!(f, "exchange: {e}"),
        }
    }
}

impl std::error::Error for AuditError {}

/// Per (account, market, side): base lots the account's reservation must equal.
type Expected = BTreeMap<(Pubkey, u16, Side), u128>;

/// Audits the collateral vault (`vault` is its account data) against every
/// margin account (address, data) and every market of the exchange.
pub fn conservation<'a>(
    vault: &[u8],
    margin_accounts: impl IntoIterator<Item = (Pubkey, &'a [u8])>,
    markets: impl IntoIterator<Item = MarketData<'a>>,
) -> Result<Conservation, AuditError> {
    let vault_balance = spl_token::state::Account::unpack(vault)
        .map_err(|_| AuditError::VaultNotATokenAccount)?
        .amount;
    let mut report = Conservation {
        vault_balance,
        total_collateral: 0,
        entry_quote: 0,
        pending_maker_quote: 0,
        fees_owed: 0,
        funding_balance: 0,
        margin_accounts: 0,
        base_imbalances: Vec::new(),
        order_mismatches: Vec::new(),
    };
    let mut base_sums: BTreeMap<u16, i128> = BTreeMap::new();
    // Per market: (long lots, short lots) as counted by the market, then as
    // summed over positions.
    let mut open_interest: BTreeMap<u16, (u64, u64, u64, u64)> = BTreeMap::new();
    let mut expected: Expected = BTreeMap::new();
    // Resting orders: (account, market, order id) -> side.
    let mut resting: BTreeMap<(Pubkey, u16, u128), Side> = BTreeMap::new();
    for data in markets {
        let market = decode::market(data.market).map_err(AuditError::Market)?;
        let index = market.market_index;
        report.fees_owed += i128::from(market.fees_accrued);
        report.funding_balance += i128::from(market.funding_balance_native);
        open_interest.insert(index, (market.long_lots, market.short_lots, 0u64, 0u64));
        // A settling market holds the settled positions' lots.
        *base_sums.entry(index).or_default() += i128::from(market.future.settled_base_lots);
        for book in [data.bids, data.asks] {
            let view = BookSideView::from_account_data(book).map_err(AuditError::Market)?;
            for order in &view.orders {
                *expected.entry((order.owner, index, view.side)).or_default() +=
                    u128::from(order.quantity.0);
                resting.insert((order.owner, index, order.order_id), view.side);
            }
        }
        let events = pending_events(data.event_queue).map_err(AuditError::Market)?;
        // Sequence numbers run without gaps from the oldest pending event.
        let first = events.first().map_or(0, |e| e.data[1]);
        if events
            .iter()
            .enumerate()
            .any(|(i, e)| e.data[1] != first + i as u64)
        {
            report
                .order_mismatches
                .push(format!("market {index}: event sequence numbers have a gap"));
        }
        for event in events {
            match event.decode() {
                Some(Event::Fill(fill)) => {
                    let maker = Pubkey::new_from_array(fill.maker);
                    let maker_side = if fill.taker_side == Side::Bid as u8 {
                        Side::Ask
                    } else {
                        Side::Bid
                    };
                    *expected.entry((maker, index, maker_side)).or_default() +=
                        u128::from(fill.quantity.0);
                    let quote = i128::from(
                        perp::fill_quote(fill.price, fill.quantity, market.quote_lot_size)
                            .map_or(u64::MAX, |q| q.0),
                    );
                    let lots = i128::from(fill.quantity.0);
                    // The maker sells when the taker buys.
                    let (base, flow) = match maker_side {
                        Side::Ask => (-lots, quote),
                        Side::Bid => (lots, -quote),
                    };
                    *base_sums.entry(index).or_default() += base;
                    report.pending_maker_quote += flow;
                }
                Some(Event::Out(out)) => {
                    let owner = Pubkey::new_from_array(out.owner);
                    let side = Side::from_u8(out.side).unwrap_or(Side::Bid);
                    *expected.entry((owner, index, side)).or_default() +=
                        u128::from(out.quantity.0);
                }
                None => report
                    .order_mismatches
                    .push(format!("market {index}: undecodable event")),
            }
        }
    }
    for (address, data) in margin_accounts {
        let account = decode::margin_account(data).map_err(AuditError::MarginAccount)?;
        report.total_collateral += i128::from(account.collateral);
        report.margin_accounts += 1;
        // The slot mask the program walks is exactly the slots in use.
        let in_use = account.slots_in_use();
        if in_use != account.position_slots {
            report.order_mismatches.push(format!(
                "{address}: position slots {:#x}, slots in use {in_use:#x}",
                account.position_slots
            ));
        }
        for (_, position) in account.active_positions() {
            let index = position.market_index;
            report.entry_quote += i128::from(position.quote_native);
            *base_sums.entry(index).or_default() += i128::from(position.base_lots);
            if let Some(counted) = open_interest.get_mut(&index) {
                if position.base_lots > 0 {
                    counted.2 += position.base_lots as u64;
                } else {
                    counted.3 += position.base_lots.unsigned_abs();
                }
            }
            for (side, reserved) in [
                (Side::Bid, position.bids_base_lots),
                (Side::Ask, position.asks_base_lots),
            ] {
                let want = expected.remove(&(address, index, side)).unwrap_or(0);
                if u128::from(reserved) != want {
                    report.order_mismatches.push(format!(
                        "{address} market {index} {side:?}: reserves {reserved} lots, book and queue hold {want}"
                    ));
                }
            }
        }
        for (_, order) in account.active_orders() {
            // A slot may outlive its order until the crank reports it gone.
            resting.remove(&(address, order.market_index, order.order_id()));
        }
    }
    for ((owner, index, side), lots) in expected {
        if lots > 0 && report.margin_accounts > 0 {
            report.order_mismatches.push(format!(
                "{owner} market {index} {side:?}: {lots} lots on book or queue but no position"
            ));
        }
    }
    for ((owner, index, order_id), _) in resting {
        if report.margin_accounts > 0 {
            report.order_mismatches.push(format!(
                "{owner} market {index}: order {order_id:#x} rests without a slot"
            ));
        }
    }
    if report.margin_accounts > 0 {
        for (index, (long, short, long_sum, short_sum)) in open_interest {
            if (long, short) != (long_sum, short_sum) {
                report.order_mismatches.push(format!(
                    "market {index}: open interest {long} long / {short} short, positions hold {long_sum} / {short_sum}"
                ));
            }
        }
    }
    report.base_imbalances = base_sums.into_iter().filter(|(_, sum)| *sum != 0).collect();
    Ok(report)
}

/// The insurance fund's books (`insurance`): the insurance shares add up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsuranceAudit {
    pub vault_balance: u64,
    pub epoch: u64,
    /// The exchange's count of this epoch's shares.
    pub total_shares: u64,
    /// Σ shares of this epoch held by margin accounts.
    pub shares_held: u128,
    /// Σ of those requested for unstaking (pending or lapsed requests).
    pub pending_shares: u128,
    /// Σ what every holder's shares would redeem now at the fund's value (a
    /// requested share at most at its value at the request).
    pub redeemable: u128,
    /// Accounts whose request or record is inconsistent.
    pub mismatches: Vec<String>,
}

impl InsuranceAudit {
    /// Σ shares held = the exchange's total; the vault can pay every holder
    /// at once; every request is part of its account's shares.
    pub fn holds(&self) -> bool {
        self.shares_held == u128::from(self.total_shares)
            && self.redeemable <= u128::from(self.vault_balance)
            && self.mismatches.is_empty()
    }
}

impl std::fmt::Display for InsuranceAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "insurance epoch {}: {} shares held of {} counted ({} requested), {} redeemable from a vault of {}",
            self.epoch,
            self.shares_held,
            self.total_shares,
            self.pending_shares,
            self.redeemable,
            self.vault_balance
        )?;
        for mismatch in &self.mismatches {
            write!(f, "; {mismatch}")?;
        }
        Ok(())
    }
}

/// Audits the insurance fund: `exchange` and `insurance_vault` are the
/// exchange's and its insurance vault's account data. Shares of an older
/// epoch (retired by a bankruptcy that depleted the fund) count as none.
pub fn insurance<'a>(
    exchange: &[u8],
    insurance_vault: &[u8],
    margin_accounts: impl IntoIterator<Item = (Pubkey, &'a [u8])>,
) -> Result<InsuranceAudit, AuditError> {
    let exchange = decode::exchange(exchange).map_err(AuditError::Exchange)?;
    let vault_balance = spl_token::state::Account::unpack(insurance_vault)
        .map_err(|_| AuditError::VaultNotATokenAccount)?
        .amount;
    let fund = kestrel::engine::insurance::Fund {
        shares: exchange.insurance_shares,
        assets: vault_balance,
    };
    let mut report = InsuranceAudit {
        vault_balance,
        epoch: exchange.insurance_epoch,
        total_shares: exchange.insurance_shares,
        shares_held: 0,
        pending_shares: 0,
        redeemable: 0,
        mismatches: Vec::new(),
    };
    for (address, data) in margin_accounts {
        let account = decode::margin_account(data).map_err(AuditError::MarginAccount)?;
        if account.has_deficit_market > 1 {
            report.mismatches.push(format!(
                "{address}: deficit market flag {}",
                account.has_deficit_market
            ));
        }
        if account.insurance_epoch != exchange.insurance_epoch {
            continue;
        }
        let (shares, pending) = (account.insurance_shares, account.unstake_shares);
        report.shares_held += u128::from(shares);
        report.pending_shares += u128::from(pending);
        if pending > shares {
            report.mismatches.push(format!(
                "{address}: {pending} shares requested of {shares} held"
            ));
            continue;
        }
        if pending == 0 && (account.unstake_requested_at != 0 || account.unstake_value != 0) {
            report
                .mismatches
                .push(format!("{address}: a request for no shares"));
        }
        let free = fund.value_of(shares - pending);
        let requested = fund.redemption(pending, account.unstake_value);
        match (free, requested) {
            (Some(free), Some(requested)) => {
                report.redeemable += u128::from(free) + u128::from(requested);
            }
            _ => report.mismatches.push(format!(
                "{address}: {shares} shares cannot be valued against {} outstanding",
                exchange.insurance_shares
            )),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::Discriminator;
    use kestrel_sdk::MarginAccount;

    fn vault(amount: u64) -> Vec<u8> {
        let account = spl_token::state::Account {
            amount,
            state: spl_token::state::AccountState::Initialized,
            ..Default::default()
        };
        let mut data = vec![0; spl_token::state::Account::LEN];
        account.pack_into_slice(&mut data);
        data
    }

    fn margin(collateral: i64) -> (Pubkey, Vec<u8>) {
        let mut account: MarginAccount = bytemuck::Zeroable::zeroed();
        account.collateral = collateral;
        let mut data = MarginAccount::DISCRIMINATOR.to_vec();
        data.extend_from_slice(bytemuck::bytes_of(&account));
        (Pubkey::new_unique(), data)
    }

    fn view(accounts: &[(Pubkey, Vec<u8>)]) -> impl Iterator<Item = (Pubkey, &[u8])> {
        accounts.iter().map(|(k, d)| (*k, d.as_slice()))
    }

    #[test]
    fn balanced_books_hold_and_any_difference_is_reported() {
        let accounts = [margin(700), margin(300), margin(0)];
        let report = conservation(&vault(1_000), view(&accounts), []).unwrap();
        assert!(report.holds(), "{report}");
        assert_eq!(report.margin_accounts, 3);

        let short = conservation(&vault(999), view(&accounts), []).unwrap();
        assert_eq!(short.imbalance(), -1);
        assert!(!short.holds());
        assert!(short.to_string().ends_with("off by -1"));
        // A negative balance (an unsettled bankruptcy) counts against the total:
        // the vault is short of the others' collateral by exactly that deficit.
        let report = conservation(&vault(900), view(&[margin(1_000), margin(-100)]), []).unwrap();
        assert!(report.holds());
    }

    #[test]
    fn open_positions_count_their_entry_quote_and_must_net_to_zero() {
        // Long 2 lots bought for 300, short 2 sold for 300: the vault holds
        // the collateral only.
        let (long_key, mut long) = margin(1_000);
        let (short_key, mut short) = margin(1_000);
        for (data, base, quote) in [(&mut long, 2i64, -300i64), (&mut short, -2, 300)] {
            let mut account = decode::margin_account(data).unwrap();
            let position = account
                .position_or_open(0, kestrel::state::InstrumentKind::Perp)
                .unwrap();
            position.base_lots = base;
            position.quote_native = quote;
            data[8..].copy_from_slice(bytemuck::bytes_of(&account));
        }
        let both = [(long_key, long.clone()), (short_key, short)];
        assert!(conservation(&vault(2_000), view(&both), [])
            .unwrap()
            .holds());
        // Without the short side the base does not net out (nor does quote).
        let alone = conservation(&vault(2_000), view(&[(long_key, long)]), []).unwrap();
        assert_eq!(alone.base_imbalances, vec![(0, 2)]);
        assert!(!alone.holds());
    }

    #[test]
    fn wrong_accounts_are_errors_not_zeroes() {
        assert_eq!(
            conservation(&[0u8; 10], [], []),
            Err(AuditError::VaultNotATokenAccount)
        );
        let not_margin = vault(1);
        assert!(matches!(
            conservation(
                &vault(0),
                [(Pubkey::new_unique(), not_margin.as_slice())],
                []
            ),
            Err(AuditError::MarginAccount(_))
        ));
    }

    fn exchange(shares: u64, epoch: u64) -> Vec<u8> {
        let mut exchange: kestrel::state::Exchange = bytemuck::Zeroable::zeroed();
        exchange.insurance_shares = shares;
        exchange.insurance_epoch = epoch;
        let mut data = kestrel::state::Exchange::DISCRIMINATOR.to_vec();
        data.extend_from_slice(bytemuck::bytes_of(&exchange));
        data
    }

    fn staker(shares: u64, epoch: u64, requested: u64, value: u64) -> (Pubkey, Vec<u8>) {
        let (key, mut data) = margin(0);
        let mut account = decode::margin_account(&data).unwrap();
        account.insurance_shares = shares;
        account.insurance_epoch = epoch;
        account.unstake_shares = requested;
        account.unstake_value = value;
        account.unstake_requested_at = i64::from(requested > 0);
        data[8..].copy_from_slice(bytemuck::bytes_of(&account));
        (key, data)
    }

    #[test]
    fn insurance_shares_add_up_and_requests_stay_within_them() {
        let stakers = [
            staker(600_000, 1, 100_000, 100),
            staker(400_000, 1, 0, 0),
            // Retired by a depleting bankruptcy: counts as nothing.
            staker(9_999, 0, 9_999, 5),
        ];
        let report = insurance(&exchange(1_000_000, 1), &vault(1_000), view(&stakers)).unwrap();
        assert!(report.holds(), "{report}");
        assert_eq!(
            (report.shares_held, report.pending_shares),
            (1_000_000, 100_000)
        );
        // The requested shares count at most at their value when requested.
        assert_eq!(report.redeemable, 500 + 100 + 400);
        let short = insurance(&exchange(1_000_001, 1), &vault(1_000), view(&stakers)).unwrap();
        assert!(!short.holds(), "a share nobody holds");
        let over = [staker(10, 1, 11, 1)];
        let report = insurance(&exchange(10, 1), &vault(1_000), view(&over)).unwrap();
        assert!(!report.holds() && report.to_string().contains("11 shares requested of 10"));
        let stale = [staker(10, 1, 0, 7)];
        assert!(!insurance(&exchange(10, 1), &vault(1_000), view(&stale))
            .unwrap()
            .holds());
    }
}
