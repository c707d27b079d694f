//! Insurance fund shares: claims on the insurance vault, pro rata.
//!
//! A share is priced at `(fund + VIRTUAL_ASSETS) / (shares + VIRTUAL_SHARES)`
//! (the ERC-4626 "virtual offset"): the fund behaves as if a holder nobody
//! controls owned `VIRTUAL_SHARES` of it from the start. So a balance the
//! fund holds while no share is outstanding (liquidation fees, a donation)
//! is not the first staker's, and a donation that inflates the share price
//! lands mostly on the virtual holder: rounding a victim's stake down by `L`
//! costs the attacker about `VIRTUAL_SHARES × L` (audit finding M-2). With
//! one virtual unit the shares' total value never exceeds the fund.
//!
//! Every conversion rounds against the staker (shares bought and value
//! redeemed down, shares given up for a deficit up), so nobody coming or
//! going takes a fraction from those who stay. Products are u128; results
//! that do not fit u64 are `None` (the caller's `MathOverflow`).

/// Assets the price formula adds to the fund: one native unit, so the
/// shares' total value stays within the fund (it exceeds the fund's share
/// of the sum by less than a unit).
pub const VIRTUAL_ASSETS: u64 = 1;
/// Shares the price formula adds to those outstanding: the first stake into
/// an empty fund buys this many shares per native unit.
pub const VIRTUAL_SHARES: u64 = 1_000;
/// A fund with more shares per native unit than this (its share price fell
/// below a thousandth of the initial price) is depleted: its stakers have
/// lost more than 99.9% of what they paid, and the bankruptcy that took it
/// there ends the epoch (audit finding L-2: new stakes at such a price would
/// need more shares than a u64 holds). Whatever dust is left stays in the
/// vault, unowned, for the next epoch's virtual holder.
pub const MAX_SHARES_PER_UNIT: u64 = VIRTUAL_SHARES * 1_000;

/// The fund as share arithmetic sees it: shares outstanding (this epoch)
/// and the insurance vault's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fund {
    pub shares: u64,
    pub assets: u64,
}

impl Fund {
    fn virtual_shares(self) -> u128 {
        u128::from(self.shares) + u128::from(VIRTUAL_SHARES)
    }

    fn virtual_assets(self) -> u128 {
        u128::from(self.assets) + u128::from(VIRTUAL_ASSETS)
    }

    /// Shares `amount` buys, rounded down.
    pub fn shares_for(self, amount: u64) -> Option<u64> {
        let shares = u128::from(amount).checked_mul(self.virtual_shares())? / self.virtual_assets();
        u64::try_from(shares).ok()
    }

    /// What `shares` (at most those outstanding) are worth, rounded down.
    /// Never more than the fund.
    pub fn value_of(self, shares: u64) -> Option<u64> {
        if shares > self.shares {
            return None;
        }
        let value = u128::from(shares).checked_mul(self.virtual_assets())? / self.virtual_shares();
        u64::try_from(value).ok()
    }

    /// What redeeming `shares` pays when they were requested at a value of
    /// `cap`: the value now, but never more than at the request (requested
    /// shares bear losses and forgo gains; audit finding M-1).
    pub fn redemption(self, shares: u64, cap: u64) -> Option<u64> {
        Some(self.value_of(shares)?.min(cap))
    }

    /// The shares to keep of `pending` requested shares capped at `cap`, so
    /// that after the others are burnt the kept ones are worth at most
    /// `cap`: the most `k` with `k × (fund + VA) / (shares − pending + k + VS)
    /// <= cap`. All of them when they are worth no more than `cap` now.
    /// Burning the rest leaves what they would have earned with the fund.
    pub fn shares_worth_cap(self, pending: u64, cap: u64) -> Option<u64> {
        if self.value_of(pending)? <= cap {
            return Some(pending);
        }
        // value > cap implies fund + VA > cap (the value never exceeds the
        // fund), so the divisor is positive.
        let others = u128::from(self.shares - pending) + u128::from(VIRTUAL_SHARES);
        let keep = u128::from(cap).checked_mul(others)?
            / self.virtual_assets().checked_sub(u128::from(cap))?;
        Some(u64::try_from(keep).ok()?.min(pending))
    }

    /// Redeems up to `held` shares against a `deficit`: the fewest shares
    /// whose value covers it (rounded up), or all of them when they are
    /// worth less. Returns (shares given up, amount paid); the amount is at
    /// most the deficit and the shares' value (audit finding L-3).
    pub fn redeem_for_deficit(self, held: u64, deficit: u64) -> Option<(u64, u64)> {
        let value = self.value_of(held)?;
        if value <= deficit {
            return Some((held, value));
        }
        let needed = u128::from(deficit)
            .checked_mul(self.virtual_shares())?
            .div_ceil(self.virtual_assets());
        let needed = u64::try_from(needed).ok()?.min(held);
        Some((needed, self.value_of(needed)?.min(deficit)))
    }

    /// Whether shares are outstanding against a fund too small for them:
    /// an empty vault, or more than `MAX_SHARES_PER_UNIT` shares per unit
    /// (counting the virtual offset). A bankruptcy that leaves the fund so
    /// retires the epoch's shares.
    pub fn is_depleted(self) -> bool {
        self.shares > 0
            && (self.assets == 0
                || self.virtual_shares() > self.virtual_assets() * u128::from(MAX_SHARES_PER_UNIT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fund(shares: u64, assets: u64) -> Fund {
        Fund { shares, assets }
    }

    #[test]
    fn shares_are_priced_at_the_fund_with_the_virtual_offset() {
        assert_eq!(
            fund(0, 0).shares_for(100),
            Some(100_000),
            "the first staker"
        );
        // 100,000 shares against 150: a share costs about 0.0015.
        assert_eq!(fund(100_000, 150).shares_for(300), Some(200_662));
        assert_eq!(
            fund(100_000, 150).value_of(50_000),
            Some(74),
            "rounded down"
        );
        assert_eq!(fund(100_000, 150).value_of(100_001), None);
        // A fund holding 100 units nobody owns: one unit buys 9 shares worth
        // nothing, 1,000 units buy shares worth at most what they cost.
        assert_eq!(fund(0, 100).shares_for(1), Some(9));
        assert_eq!(fund(9, 101).value_of(9), Some(0));
        let shares = fund(0, 100).shares_for(1_000).unwrap();
        assert_eq!(fund(shares, 1_100).value_of(shares), Some(999));
        assert_eq!(fund(u64::MAX, 0).shares_for(u64::MAX), None, "overflow");
    }

    #[test]
    fn the_first_staker_does_not_take_an_unowned_balance() {
        // 100 USDC of fees in an empty-shares fund, 1 USDC staked (M-2).
        let unowned = fund(0, 100_000_000);
        let shares = unowned.shares_for(1_000_000).unwrap();
        let after = fund(shares, 101_000_000);
        assert!(after.value_of(shares).unwrap() <= 1_000_000);
    }

    #[test]
    fn the_donation_attack_loses_what_it_takes() {
        // Mallory stakes 1 unit, donates D, the victim stakes x.
        let (donation, x) = (50_000_000u64, 100_000_000u64);
        let mallory = fund(0, 0).shares_for(1).unwrap();
        let inflated = fund(mallory, 1 + donation);
        let victim = inflated.shares_for(x).unwrap();
        let after = fund(mallory + victim, 1 + donation + x);
        let mallory_out = after.value_of(mallory).unwrap();
        let victim_out = after.value_of(victim).unwrap();
        assert!(victim_out >= x - x / 10_000, "{victim_out}");
        // Mallory's loss is at least VIRTUAL_SHARES times the victim's.
        let mallory_loss = 1 + donation - mallory_out;
        assert!(
            mallory_loss >= VIRTUAL_SHARES * (x - victim_out),
            "{mallory_out}"
        );
    }

    #[test]
    fn requested_shares_are_worth_at_most_their_value_at_request() {
        let f = fund(200_000, 250);
        // 100,000 shares asked back when worth 100: the gain is not theirs.
        assert_eq!(f.redemption(100_000, 100), Some(100));
        // After a loss they are worth less than at the request.
        assert_eq!(fund(200_000, 180).redemption(100_000, 100), Some(90));
        let keep = f.shares_worth_cap(100_000, 100).unwrap();
        let burnt = fund(200_000 - (100_000 - keep), 250);
        assert!(burnt.value_of(keep).unwrap() <= 100);
        assert!(burnt.value_of(keep + 1).unwrap_or(0) >= 100);
        assert_eq!(
            fund(200_000, 180).shares_worth_cap(100_000, 100),
            Some(100_000)
        );
    }

    #[test]
    fn a_deficit_takes_the_fewest_shares() {
        let f = fund(1_000_000, 1_000);
        assert_eq!(f.redeem_for_deficit(100_000, 1_000), Some((100_000, 100)));
        let (shares, paid) = f.redeem_for_deficit(600_000, 300).unwrap();
        assert_eq!(paid, 300);
        assert!(f.value_of(shares).unwrap() >= 300);
        assert!(f.value_of(shares - 1).unwrap() < 300, "the fewest");
        assert_eq!(f.redeem_for_deficit(0, 300), Some((0, 0)));
    }

    #[test]
    fn a_fund_too_small_for_its_shares_is_depleted() {
        assert!(!fund(0, 0).is_depleted(), "no shares, nothing to retire");
        assert!(fund(1, 0).is_depleted());
        assert!(
            !fund(1_000_000_000, 1_000_000).is_depleted(),
            "initial price"
        );
        assert!(!fund(1_000_000_000, 1_000).is_depleted(), "at the floor");
        assert!(fund(1_000_000_000, 998).is_depleted());
        // 91 USDC of shares left with 3 units: the L-2 case.
        assert!(fund(91_000_000_000, 3).is_depleted());
    }

    proptest! {
        #[test]
        fn staking_then_redeeming_never_gains(
            amount in 0u64..1 << 50,
            shares in 0u64..1 << 50,
            assets in 0u64..1 << 50,
        ) {
            let f = fund(shares, assets);
            // A fund so far below its shares that the stake's shares do not
            // fit is refused (MathOverflow): nothing is bought, nothing gained.
            if let Some(bought) = f.shares_for(amount) {
                let back = fund(shares + bought, assets + amount).value_of(bought).unwrap();
                prop_assert!(back <= amount);
            }
        }

        #[test]
        fn the_shares_total_value_never_exceeds_the_fund(
            shares in 0u64..u64::MAX / 2,
            assets in 0u64..u64::MAX / 2,
            split in 0u64..=u64::MAX,
        ) {
            let f = fund(shares, assets);
            let a = split % (shares + 1);
            let total = f.value_of(a).unwrap() as u128 + f.value_of(shares - a).unwrap() as u128;
            prop_assert!(total <= u128::from(assets));
        }

        #[test]
        fn coming_and_going_never_lowers_the_share_price(
            shares in 1u64..1 << 50,
            assets in 0u64..1 << 50,
            amount in 0u64..1 << 50,
            leaving in 0u64..1 << 50,
        ) {
            let f = fund(shares, assets);
            // price' >= price  <=>  (a' + VA)(s + VS) >= (a + VA)(s' + VS)
            let higher = |g: Fund| g.virtual_assets() * f.virtual_shares()
                >= f.virtual_assets() * g.virtual_shares();
            // A stake whose shares do not fit is refused: nothing changes.
            if let Some(bought) = f.shares_for(amount) {
                prop_assert!(higher(fund(shares + bought, assets + amount)));
            }
            let leaving = leaving % (shares + 1);
            let paid = f.value_of(leaving).unwrap();
            prop_assert!(higher(fund(shares - leaving, assets - paid)));
        }

        #[test]
        fn burning_to_the_cap_keeps_at_most_the_cap_and_helps_the_others(
            shares in 1u64..1 << 50,
            assets in 0u64..1 << 50,
            pending in 0u64..1 << 50,
            cap in 0u64..1 << 50,
        ) {
            let f = fund(shares, assets);
            let pending = pending % (shares + 1);
            let keep = f.shares_worth_cap(pending, cap).unwrap();
            prop_assert!(keep <= pending);
            let burnt = fund(shares - (pending - keep), assets);
            let kept_value = burnt.value_of(keep).unwrap();
            prop_assert!(kept_value <= cap.max(f.value_of(pending).unwrap()));
            if keep < pending {
                prop_assert!(kept_value <= cap);
            }
            // Nobody else's share loses value.
            prop_assert!(burnt.virtual_assets() * f.virtual_shares()
                >= f.virtual_assets() * burnt.virtual_shares());
        }

        #[test]
        fn a_deficit_redemption_pays_at_most_the_deficit_and_the_value(
            shares in 1u64..1 << 50,
            assets in 0u64..1 << 50,
            held in 0u64..1 << 50,
            deficit in 0u64..1 << 50,
        ) {
            let f = fund(shares, assets);
            let held = held % (shares + 1);
            let (given, paid) = f.redeem_for_deficit(held, deficit).unwrap();
            prop_assert!(given <= held);
            prop_assert!(paid <= deficit);
            prop_assert!(paid <= f.value_of(given).unwrap());
            prop_assert!(paid == deficit || given == held);
            let after = fund(shares - given, assets - paid);
            prop_assert!(after.virtual_assets() * f.virtual_shares()
                >= f.virtual_assets() * after.virtual_shares());
        }

        #[test]
        fn after_an_epoch_ends_stakes_are_fairly_priced(
            dust in 0u64..1 << 40,
            amount in 1u64..1 << 52,
        ) {
            // A new epoch starts with no shares against whatever dust is left.
            let f = fund(0, dust);
            let bought = f.shares_for(amount).unwrap();
            let value = fund(bought, dust + amount).value_of(bought).unwrap();
            prop_assert!(value <= amount);
            // Within one share's price (dust / VS) plus a unit of rounding.
            prop_assert!(amount - value <= dust / VIRTUAL_SHARES + 2);
        }

        #[test]
        fn a_fund_that_is_not_depleted_prices_large_stakes(
            shares in 1u64..1 << 60,
            assets in 0u64..1 << 50,
            amount in 0u64..1 << 44,
        ) {
            let f = fund(shares, assets);
            prop_assume!(!f.is_depleted());
            // At most MAX_SHARES_PER_UNIT shares per unit: 2^44 units fit.
            prop_assert!(f.shares_for(amount).is_some());
        }
    }
}
