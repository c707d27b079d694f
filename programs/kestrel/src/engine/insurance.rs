//! Insurance fund shares: claims on the insurance vault, pro rata. Both
//! conversions round down, so neither a staker coming in nor one going out
//! takes a fraction from those who stay.

/// Shares `amount` buys from a fund holding `fund` against `total_shares`:
/// one per unit when there are none yet. `None` when shares exist against
/// an empty fund (a loss that empties it retires them) or on overflow.
pub fn shares_for(amount: u64, total_shares: u64, fund: u64) -> Option<u64> {
    if total_shares == 0 {
        return Some(amount);
    }
    if fund == 0 {
        return None;
    }
    u64::try_from(u128::from(amount) * u128::from(total_shares) / u128::from(fund)).ok()
}

/// What `shares` of `total_shares` are worth out of `fund`.
pub fn value_of(shares: u64, total_shares: u64, fund: u64) -> Option<u64> {
    if shares > total_shares || total_shares == 0 {
        return None;
    }
    u64::try_from(u128::from(shares) * u128::from(fund) / u128::from(total_shares)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shares_are_priced_at_the_fund() {
        assert_eq!(shares_for(100, 0, 0), Some(100), "the first staker");
        // 100 shares against 150: a share costs 1.5.
        assert_eq!(shares_for(300, 100, 150), Some(200));
        assert_eq!(shares_for(1, 100, 150), Some(0), "too small for a share");
        assert_eq!(shares_for(1, 100, 0), None);
        assert_eq!(value_of(50, 100, 151), Some(75), "rounded down");
        assert_eq!(value_of(101, 100, 151), None);
    }

    proptest! {
        #[test]
        fn staking_then_redeeming_never_gains(
            amount in 0u64..1 << 50,
            total in 1u64..1 << 50,
            fund in 1u64..1 << 50,
        ) {
            let shares = shares_for(amount, total, fund).unwrap();
            let back = value_of(shares, total + shares, fund + amount).unwrap();
            prop_assert!(back <= amount);
        }
    }
}
